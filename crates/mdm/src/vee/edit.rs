//! Editing: an operator's (or an editing rule's) new values for an interval, checked before
//! they replace the old ones. The caller stores the audit trail.

use model::{IntervalReading, Quality};

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("an interval's energy cannot be negative ({what} {value})")]
    Negative { what: &'static str, value: i64 },
    #[error("apparent energy {vah} VAh cannot be less than active energy {wh} Wh")]
    ApparentBelowActive { wh: i64, vah: i64 },
}

/// The values an edit sets: import always; export when given (else kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewValues {
    pub import_wh: i64,
    pub import_vah: i64,
    pub export_wh: Option<i64>,
    pub export_vah: Option<i64>,
}

impl NewValues {
    /// New import values, the export kept.
    pub fn import(import_wh: i64, import_vah: i64) -> Self {
        NewValues {
            import_wh,
            import_vah,
            export_wh: None,
            export_vah: None,
        }
    }
}

/// The interval with the new values and flagged `Edited`; `Estimated` and `Suspect` are
/// dropped (the value is now an operator's, judged right), other flags kept. Confirming a
/// suspect value unchanged is an edit too.
pub fn edit_interval(
    original: &IntervalReading,
    new: &NewValues,
) -> Result<IntervalReading, EditError> {
    let energies = [
        ("import Wh", Some(new.import_wh)),
        ("import VAh", Some(new.import_vah)),
        ("export Wh", new.export_wh),
        ("export VAh", new.export_vah),
    ];
    for (what, value) in energies {
        if let Some(value) = value.filter(|v| *v < 0) {
            return Err(EditError::Negative { what, value });
        }
    }
    if new.import_vah < new.import_wh {
        return Err(EditError::ApparentBelowActive {
            wh: new.import_wh,
            vah: new.import_vah,
        });
    }
    let mut quality: Vec<Quality> = original
        .quality
        .iter()
        .copied()
        .filter(|q| !matches!(q, Quality::Estimated | Quality::Suspect | Quality::Edited))
        .collect();
    quality.push(Quality::Edited);
    Ok(IntervalReading {
        import_wh: new.import_wh,
        import_vah: new.import_vah,
        export_wh: new.export_wh.or(original.export_wh),
        export_vah: new.export_vah.or(original.export_vah),
        quality,
        ..original.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vee::testing::{interval, t};

    #[test]
    fn an_edit_replaces_import_and_flags_it() {
        let mut original = interval(t("2024-05-10 10:15"), 9_000);
        original.export_wh = Some(3);
        original.quality = vec![Quality::ClockDoubtful, Quality::Suspect, Quality::Estimated];
        let edited = edit_interval(&original, &NewValues::import(120, 130)).unwrap();
        assert_eq!((edited.import_wh, edited.import_vah), (120, 130));
        assert_eq!(
            edited.quality,
            vec![Quality::ClockDoubtful, Quality::Edited]
        );
        assert_eq!(edited.export_wh, Some(3));
        assert_eq!(edited.interval_end, original.interval_end);
        // Edited again: still one Edited flag.
        assert_eq!(
            edit_interval(&edited, &NewValues::import(1, 1))
                .unwrap()
                .quality,
            edited.quality
        );
    }

    #[test]
    fn impossible_edits_are_refused() {
        let original = interval(t("2024-05-10 10:15"), 100);
        assert_eq!(
            edit_interval(&original, &NewValues::import(-1, 5)),
            Err(EditError::Negative {
                what: "import Wh",
                value: -1
            })
        );
        assert_eq!(
            edit_interval(&original, &NewValues::import(5, i64::MIN)),
            Err(EditError::Negative {
                what: "import VAh",
                value: i64::MIN
            })
        );
        let negative_export = NewValues {
            export_wh: Some(-3),
            ..NewValues::import(5, 6)
        };
        assert_eq!(
            edit_interval(&original, &negative_export),
            Err(EditError::Negative {
                what: "export Wh",
                value: -3
            })
        );
        let err = edit_interval(&original, &NewValues::import(100, 99)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "apparent energy 99 VAh cannot be less than active energy 100 Wh"
        );
    }
}
