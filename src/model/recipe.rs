//! A workflow recipe's `recipe.yaml`: what component and event it starts from,
//! and the industries and goals it serves. The recipe's `workflow.yaml` and
//! `test.yaml` sit beside it (see `suggest::recipes`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::scalar::Ident;

/// A recipe's description of itself.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// A short title, e.g. `Sales follow-up for contact requests`.
    pub name: String,
    /// What the workflow does and why it helps, in a sentence or three.
    pub description: String,
    /// The component type whose event starts it (`templates/components/<id>/`).
    pub component: Ident,
    /// The component event it starts from.
    pub event: super::component::ComponentEvent,
    /// The industries it fits.
    pub industries: Vec<Industry>,
    /// The goals it serves.
    pub goals: Vec<Goal>,
    /// The form fields the workflow reads (`trigger.fields.<name>`).
    #[serde(default)]
    pub fields: Vec<String>,
    /// The contact lists it uses; the workspace must have them.
    #[serde(default)]
    pub lists: Vec<Ident>,
}

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            JsonSchema,
        )]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == text)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// The industry a site serves, which workflow suggestions are matched to.
    Industry {
        Saas => "saas",
        Ecommerce => "ecommerce",
        ProfessionalServices => "professional_services",
        Agency => "agency",
        Education => "education",
        Healthcare => "healthcare",
        RealEstate => "real_estate",
        Nonprofit => "nonprofit",
        Events => "events",
        Restaurant => "restaurant",
        Fitness => "fitness",
        Finance => "finance",
        Travel => "travel",
        LocalServices => "local_services",
    }
);

named_enum!(
    /// What a site's owner wants from it, which workflow suggestions are matched to.
    Goal {
        LeadGeneration => "lead_generation",
        ClientAcquisition => "client_acquisition",
        Nurturing => "nurturing",
        Onboarding => "onboarding",
        Retention => "retention",
        Sales => "sales",
        EventRegistration => "event_registration",
        Donations => "donations",
        Reengagement => "reengagement",
        Feedback => "feedback",
    }
);
