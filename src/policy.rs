//! Which values are encrypted (spec §4): the six selectors, of which at most
//! one may be set, and `mac_only_encrypted`.

use regex::Regex;
use std::fmt;

pub const DEFAULT_UNENCRYPTED_SUFFIX: &str = "_unencrypted";

/// The selector settings as written in metadata, flags or `.sops.yaml`.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct SelectorSpec {
    pub unencrypted_suffix: String,
    pub encrypted_suffix: String,
    pub unencrypted_regex: String,
    pub encrypted_regex: String,
    pub unencrypted_comment_regex: String,
    pub encrypted_comment_regex: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    MoreThanOne,
    BadRegex { field: &'static str, error: String },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::MoreThanOne => f.write_str(
                "cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, \
                 unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file",
            ),
            PolicyError::BadRegex { field, error } => write!(f, "invalid {field}: {error}"),
        }
    }
}

impl SelectorSpec {
    pub fn count_set(&self) -> usize {
        [
            &self.unencrypted_suffix,
            &self.encrypted_suffix,
            &self.unencrypted_regex,
            &self.encrypted_regex,
            &self.unencrypted_comment_regex,
            &self.encrypted_comment_regex,
        ]
        .iter()
        .filter(|s| !s.is_empty())
        .count()
    }

    /// Fill fields left empty in `self` from `fallback` (flags over config, §4.3).
    pub fn or(mut self, fallback: &SelectorSpec) -> SelectorSpec {
        let pairs = [
            (&mut self.unencrypted_suffix, &fallback.unencrypted_suffix),
            (&mut self.encrypted_suffix, &fallback.encrypted_suffix),
            (&mut self.unencrypted_regex, &fallback.unencrypted_regex),
            (&mut self.encrypted_regex, &fallback.encrypted_regex),
            (&mut self.unencrypted_comment_regex, &fallback.unencrypted_comment_regex),
            (&mut self.encrypted_comment_regex, &fallback.encrypted_comment_regex),
        ];
        for (mine, theirs) in pairs {
            if mine.is_empty() {
                mine.clone_from(theirs);
            }
        }
        self
    }

    /// Validate and compile. No selector at all means the default
    /// `unencrypted_suffix` (in memory only; the caller decides what to write).
    pub fn compile(&self) -> Result<Selector, PolicyError> {
        if self.count_set() > 1 {
            return Err(PolicyError::MoreThanOne);
        }
        let re = |field: &'static str, s: &str| {
            Regex::new(s).map_err(|e| PolicyError::BadRegex {
                field,
                error: e.to_string().lines().last().unwrap_or_default().trim().to_string(),
            })
        };
        Ok(if !self.encrypted_suffix.is_empty() {
            Selector::EncryptedSuffix(self.encrypted_suffix.clone())
        } else if !self.unencrypted_regex.is_empty() {
            Selector::UnencryptedRegex(re("unencrypted_regex", &self.unencrypted_regex)?)
        } else if !self.encrypted_regex.is_empty() {
            Selector::EncryptedRegex(re("encrypted_regex", &self.encrypted_regex)?)
        } else if !self.unencrypted_comment_regex.is_empty() {
            Selector::UnencryptedCommentRegex(re("unencrypted_comment_regex", &self.unencrypted_comment_regex)?)
        } else if !self.encrypted_comment_regex.is_empty() {
            Selector::EncryptedCommentRegex(re("encrypted_comment_regex", &self.encrypted_comment_regex)?)
        } else if !self.unencrypted_suffix.is_empty() {
            Selector::UnencryptedSuffix(self.unencrypted_suffix.clone())
        } else {
            Selector::UnencryptedSuffix(DEFAULT_UNENCRYPTED_SUFFIX.to_string())
        })
    }
}

/// A compiled selector. `All` encrypts everything (the binary store).
#[derive(Clone, Debug)]
pub enum Selector {
    All,
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
    UnencryptedCommentRegex(Regex),
    EncryptedCommentRegex(Regex),
}

impl Selector {
    /// Whether a path component matches the key selector, if it is one.
    /// A match on any component of the path decides for the whole subtree.
    pub fn key_matches(&self, key: &str) -> bool {
        match self {
            Selector::UnencryptedSuffix(s) | Selector::EncryptedSuffix(s) => key.ends_with(s.as_str()),
            Selector::UnencryptedRegex(r) | Selector::EncryptedRegex(r) => r.is_match(key),
            _ => false,
        }
    }

    /// Whether a leaf is encrypted, given whether any path component matched
    /// ([`Selector::key_matches`]) and the comments stack (§4.2).
    pub fn should_encrypt(&self, any_key_matched: bool, comments: &[Vec<String>], is_comment: bool) -> bool {
        match self {
            Selector::All => true,
            Selector::UnencryptedSuffix(_) | Selector::UnencryptedRegex(_) => !any_key_matched,
            Selector::EncryptedSuffix(_) | Selector::EncryptedRegex(_) => any_key_matched,
            Selector::UnencryptedCommentRegex(r) => !comments.iter().flatten().any(|c| r.is_match(c)),
            Selector::EncryptedCommentRegex(r) => {
                let last_level = comments.len().saturating_sub(1);
                comments.iter().enumerate().any(|(i, level)| {
                    level.iter().enumerate().any(|(j, c)| {
                        // The comment being evaluated does not select itself.
                        let is_self = is_comment && i == last_level && j + 1 == level.len();
                        !is_self && r.is_match(c)
                    })
                })
            }
        }
    }

    pub fn uses_comments(&self) -> bool {
        matches!(
            self,
            Selector::UnencryptedCommentRegex(_) | Selector::EncryptedCommentRegex(_)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_than_one_selector_is_rejected() {
        let s = SelectorSpec {
            unencrypted_suffix: "_u".into(),
            encrypted_regex: "x".into(),
            ..Default::default()
        };
        assert_eq!(s.compile().err(), Some(PolicyError::MoreThanOne));
    }

    #[test]
    fn default_is_unencrypted_suffix() {
        let sel = SelectorSpec::default().compile().unwrap();
        assert!(sel.key_matches("port_unencrypted"));
        assert!(!sel.should_encrypt(true, &[], false));
        assert!(sel.should_encrypt(false, &[], false));
    }

    #[test]
    fn encrypted_comment_regex_skips_itself() {
        let sel = SelectorSpec {
            encrypted_comment_regex: "sops:enc".into(),
            ..Default::default()
        }
        .compile()
        .unwrap();
        let stack = vec![vec![" sops:enc".to_string()]];
        assert!(!sel.should_encrypt(false, &stack, true));
        assert!(sel.should_encrypt(false, &stack, false));
        let stack = vec![vec![" sops:enc".to_string(), " other".to_string()]];
        assert!(sel.should_encrypt(false, &stack, true));
    }
}
