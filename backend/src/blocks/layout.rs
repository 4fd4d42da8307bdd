//! An app's layout as it is built ([`LayoutStack`], which the builder and a region's
//! render both place what they add into), and the checks the builder's calls cannot
//! rule out by their shape: tabs hold only tabs, and a tab is only found inside tabs.

use keepsake_shared::config::LayoutNode;

/// A tab outside tabs, or something other than a tab directly inside tabs.
pub(crate) fn misplaced_tab(nodes: &[LayoutNode], in_tabs: bool) -> Option<String> {
    nodes.iter().find_map(|node| match node {
        LayoutNode::Tab { label, children } => {
            if in_tabs {
                misplaced_tab(children, false)
            } else {
                Some(format!("the tab {label:?} is not inside `tabs`"))
            }
        }
        _ if in_tabs => Some("`tabs` may hold only tabs (add them with `tab`)".into()),
        LayoutNode::Tabs { children } => misplaced_tab(children, true),
        LayoutNode::Row { children }
        | LayoutNode::Column { children }
        | LayoutNode::Accordion { children, .. } => misplaced_tab(children, false),
        LayoutNode::Component { .. } | LayoutNode::Render(_) => None,
    })
}

/// A layout being built: the containers open so far, outermost first. What is added
/// goes into the innermost one; closing a container wraps what it holds into one node
/// of the container around it.
#[derive(Debug)]
pub(crate) struct LayoutStack(Vec<Vec<LayoutNode>>);

impl Default for LayoutStack {
    fn default() -> Self {
        LayoutStack(vec![Vec::new()])
    }
}

impl LayoutStack {
    /// Places `node` in the innermost open container.
    pub(crate) fn push(&mut self, node: LayoutNode) {
        if let Some(container) = self.0.last_mut() {
            container.push(node);
        }
    }

    /// Lays out what `build` adds to `owner` (the builder holding this stack) in a
    /// container of its own, which `wrap` makes a node of.
    pub(crate) fn within<T>(
        owner: &mut T,
        stack: fn(&mut T) -> &mut LayoutStack,
        build: impl FnOnce(&mut T),
        wrap: impl FnOnce(Vec<LayoutNode>) -> LayoutNode,
    ) {
        stack(owner).0.push(Vec::new());
        build(owner);
        let children = stack(owner).0.pop().unwrap_or_default();
        stack(owner).push(wrap(children));
    }

    /// The top-level layout so far.
    pub(crate) fn top(&mut self) -> &mut [LayoutNode] {
        self.0
            .first_mut()
            .map_or(&mut [][..], |nodes| &mut nodes[..])
    }

    /// The finished layout: the top level (every container is closed by then).
    pub(crate) fn finish(mut self) -> Vec<LayoutNode> {
        self.0.swap_remove(0)
    }
}
