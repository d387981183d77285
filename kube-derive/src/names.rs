//! The CRD's names from the kind: singular, plural, list kind.
//!
//! Guarantees: without `plural`/`singular` the names are the lowercase kind
//! and its English plural by the rules kube-rs uses (`-s`; `-es` after s, x,
//! z, ch, sh; `-ies` for a consonant + y), so a kind gets the same resource
//! name here as there. An explicit `plural`/`singular` always wins.

/// The plural of a lowercase word.
pub fn plural(word: &str) -> String {
    if ["s", "x", "z", "ch", "sh"]
        .iter()
        .any(|end| word.ends_with(end))
    {
        return format!("{word}es");
    }
    if let Some(stem) = word.strip_suffix('y')
        && stem.chars().last().is_some_and(|c| !"aeiou".contains(c))
    {
        return format!("{stem}ies");
    }
    format!("{word}s")
}

/// Singular, plural and list kind of `kind`.
pub struct Names {
    pub singular: String,
    pub plural: String,
    pub list_kind: String,
}

impl Names {
    pub fn new(kind: &str, singular: Option<&str>, plural: Option<&str>) -> Self {
        let lower = kind.to_ascii_lowercase();
        Self {
            plural: plural.map_or_else(|| self::plural(&lower), str::to_string),
            singular: singular.map_or(lower, str::to_string),
            list_kind: format!("{kind}List"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_plurals() {
        for (kind, expected) in [
            ("foo", "foos"),
            ("policy", "policies"),
            ("gateway", "gateways"),
            ("ingress", "ingresses"),
            ("box", "boxes"),
            ("quiz", "quizes"),
            ("patch", "patches"),
            ("mesh", "meshes"),
            ("day", "days"),
            ("key", "keys"),
            ("y", "ys"),
            ("networkpolicy", "networkpolicies"),
        ] {
            assert_eq!(plural(kind), expected, "{kind}");
        }
    }

    #[test]
    fn names_from_kind_unless_given() {
        let n = Names::new("NetworkPolicy", None, None);
        assert_eq!(
            (n.singular.as_str(), n.plural.as_str(), n.list_kind.as_str()),
            ("networkpolicy", "networkpolicies", "NetworkPolicyList")
        );
        let n = Names::new("Moose", Some("elk"), Some("moose"));
        assert_eq!((n.singular.as_str(), n.plural.as_str()), ("elk", "moose"));
    }
}
