//! Checks of an app's layout that the builder's calls cannot rule out by their
//! shape: tabs hold only tabs, and a tab is only found inside tabs.

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
