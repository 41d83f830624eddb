//! Fitting provider-supplied strings into Appwrite string attributes.
//!
//! An Appwrite string attribute has a size, counted in characters (Unicode code points), and a document
//! with a longer value is refused (400 `document_invalid_structure`). The strings a payload carries (the
//! buyer's email, the order id, the product title) come from the provider and can be of any length. If
//! they were stored as they are, an authentic payload with one overlong value could not be recorded at
//! all, not even as a failure: the delivery would answer 503 on every redelivery, forever.
//!
//! So a value that does not fit is shortened, deterministically, to a prefix of itself (an admin still
//! recognises it) followed by `…` and the first 16 hex characters of the SHA-256 of the *whole* value.
//! The hash keeps shortened values apart: two long values that share their prefix still get different
//! stored values (up to a 64-bit hash collision), and a redelivery of the same value gets the same one.
//! The full value is never lost: the failure record keeps the raw body.

use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// Marks a value that was shortened: what precedes it is a prefix of the value, what follows is its hash.
pub const FITTED_MARKER: char = '…';
/// Hex characters of the value's SHA-256 kept in a shortened value (64 bits).
pub const FITTED_HASH_CHARS: usize = 16;
/// Characters a shortened value spends on the marker and the hash; the rest of the attribute is prefix.
pub const FITTED_SUFFIX_CHARS: usize = 1 + FITTED_HASH_CHARS;

/// `value` as it is when it has at most `max_chars` characters; otherwise exactly `max_chars` characters:
/// a prefix of `value` (cut between characters, never inside one), [`FITTED_MARKER`], and the first
/// [`FITTED_HASH_CHARS`] hex characters of its SHA-256. An attribute smaller than
/// [`FITTED_SUFFIX_CHARS`] (none of Tollgate's) gets as much of the hash as fits and no prefix.
pub fn fit_to_attribute(value: &str, max_chars: usize) -> Cow<'_, str> {
    // A string of at most `max_chars` bytes has at most `max_chars` characters: no need to count them.
    if value.len() <= max_chars || value.chars().count() <= max_chars {
        return Cow::Borrowed(value);
    }
    let hash = hex::encode(Sha256::digest(value.as_bytes()));
    let Some(prefix_chars) = max_chars.checked_sub(FITTED_SUFFIX_CHARS) else {
        return Cow::Owned(hash[..max_chars].to_owned());
    };
    let prefix_end = value.char_indices().nth(prefix_chars).map_or(value.len(), |(at, _)| at);
    Cow::Owned(format!("{}{FITTED_MARKER}{}", &value[..prefix_end], &hash[..FITTED_HASH_CHARS]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_value_that_fits_is_returned_as_it_is_without_copying() {
        assert!(matches!(fit_to_attribute("Member plan", 128), Cow::Borrowed("Member plan")));
        assert!(matches!(fit_to_attribute("ééé", 3), Cow::Borrowed("ééé")), "three characters, six bytes");
        assert!(matches!(fit_to_attribute("", 0), Cow::Borrowed("")));
    }

    #[test]
    fn a_long_value_keeps_its_prefix_and_ends_with_the_hash_of_the_whole_value() {
        let title = "x".repeat(200);
        let fitted = fit_to_attribute(&title, 128);
        let hash = hex::encode(Sha256::digest(title.as_bytes()));
        assert_eq!(fitted, format!("{}…{}", "x".repeat(111), &hash[..16]));
        assert_eq!(fitted.chars().count(), 128);
    }

    #[test]
    fn multibyte_characters_are_never_cut() {
        let value = "日本".repeat(30);
        let fitted = fit_to_attribute(&value, 20);
        assert!(fitted.starts_with("日本日"), "{fitted}");
        assert_eq!(fitted.chars().count(), 20);
    }

    #[test]
    fn an_attribute_smaller_than_the_hash_gets_only_the_hash() {
        let hash = hex::encode(Sha256::digest(b"abcdefghijklmnopqrstuvwxyz"));
        assert_eq!(fit_to_attribute("abcdefghijklmnopqrstuvwxyz", 8), &hash[..8]);
        assert_eq!(fit_to_attribute("abc", 0), "");
    }

    proptest! {
        #[test]
        fn the_result_never_exceeds_the_attribute(value in "\\PC{0,300}", max in 0usize..200) {
            prop_assert!(fit_to_attribute(&value, max).chars().count() <= max);
        }

        #[test]
        fn values_that_fit_are_unchanged(value in "\\PC{0,100}", extra in 0usize..50) {
            let max = value.chars().count() + extra;
            prop_assert_eq!(fit_to_attribute(&value, max), value.as_str());
        }

        #[test]
        fn shortened_values_fill_the_attribute_and_start_with_a_prefix_of_the_value(
            value in "\\PC{40,300}",
            max in FITTED_SUFFIX_CHARS..40,
        ) {
            let fitted = fit_to_attribute(&value, max);
            prop_assert_eq!(fitted.chars().count(), max);
            let (prefix, hash) = fitted.rsplit_once(FITTED_MARKER).expect("a marker");
            prop_assert!(value.starts_with(prefix));
            prop_assert_eq!(hash.len(), FITTED_HASH_CHARS);
        }

        #[test]
        fn the_same_value_always_fits_to_the_same_result(value in "\\PC{0,300}", max in 0usize..200) {
            let redelivered = value.clone();
            prop_assert_eq!(fit_to_attribute(&value, max), fit_to_attribute(&redelivered, max));
        }

        #[test]
        fn distinct_long_values_with_a_common_prefix_stay_distinct(
            prefix in "\\PC{130,160}",
            a in "\\PC{0,20}",
            b in "\\PC{0,20}",
        ) {
            prop_assume!(a != b);
            let (a, b) = (format!("{prefix}{a}"), format!("{prefix}{b}"));
            prop_assert_ne!(fit_to_attribute(&a, 128), fit_to_attribute(&b, 128));
        }
    }
}
