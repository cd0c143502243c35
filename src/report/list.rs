//! [`DimensionList`]: which of Gladly's lists a dimension topic holds, and [`ListItem`], one
//! item of a list. The source (`gladly`) GETs them; the core (`records`), the config and the
//! topics name them; all of them know this module.

use serde::{Deserialize, Serialize};

/// One of Gladly's list endpoints published as a dimension topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DimensionList {
    /// `GET /api/v1/agents`: `id`, `name`, `emailAddress`.
    Agents,
    /// `GET /api/v1/inboxes`: `id`, `name`, `disabled`.
    Inboxes,
    /// `GET /api/v1/teams`: `id`, `name`, `description`, `agentIds`.
    Teams,
    /// `GET /api/v1/topics`: `id`, `name`, `disabled`, `parentId`.
    Topics,
}

impl DimensionList {
    /// Every list, in a stable order.
    pub const ALL: [DimensionList; 4] = [
        DimensionList::Agents,
        DimensionList::Inboxes,
        DimensionList::Teams,
        DimensionList::Topics,
    ];

    /// The name in config, topics and checkpoint keys: `agents`, `inboxes`, `teams`, `topics`.
    pub fn name(self) -> &'static str {
        match self {
            DimensionList::Agents => "agents",
            DimensionList::Inboxes => "inboxes",
            DimensionList::Teams => "teams",
            DimensionList::Topics => "topics",
        }
    }

    /// The endpoint's path.
    pub fn path(self) -> &'static str {
        match self {
            DimensionList::Agents => "/api/v1/agents",
            DimensionList::Inboxes => "/api/v1/inboxes",
            DimensionList::Teams => "/api/v1/teams",
            DimensionList::Topics => "/api/v1/topics",
        }
    }
}

impl std::fmt::Display for DimensionList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One item of a list as Gladly answered it (the JSON object, every field kept).
pub type ListItem = serde_json::Map<String, serde_json::Value>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_display_and_serde_agree() {
        let names: Vec<_> = DimensionList::ALL.iter().map(|l| l.name()).collect();
        assert_eq!(names, ["agents", "inboxes", "teams", "topics"]);
        for list in DimensionList::ALL {
            assert_eq!(list.to_string(), list.name());
            let json = serde_json::to_string(&list).unwrap();
            assert_eq!(json, format!("\"{}\"", list.name()));
            assert_eq!(serde_json::from_str::<DimensionList>(&json).unwrap(), list);
        }
        assert_eq!(DimensionList::Teams.path(), "/api/v1/teams");
    }
}
