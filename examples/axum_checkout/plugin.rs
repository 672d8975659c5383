//! A loyalty plugin, written as a separate crate would be: it registers its own hook handlers
//! on the checkout, reads its own part of the request's additional data, and keeps its own
//! service.

use std::sync::Mutex;

use hookflow::prelude::*;
use serde::Deserialize;

use crate::workflow::{Checkout, Order};

/// Points awarded, as the loyalty service records them.
#[derive(Debug, Default)]
pub struct LoyaltyLedger {
    /// Every award, in order.
    pub awards: Mutex<Vec<Award>>,
}

/// Points awarded for one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Award {
    /// The loyalty member (from the request's additional data).
    pub member: String,
    /// One per dollar.
    pub points: u64,
    /// The order.
    pub order: String,
    /// The request that placed it.
    pub request_id: Option<String>,
    /// Who placed it.
    pub actor: Option<String>,
}

/// What the storefront may send for the plugin in `additional_data`.
#[derive(Debug, Deserialize)]
struct LoyaltyExtras {
    loyalty_member: Option<String>,
}

/// The plugin: one point per dollar of each completed order, for loyalty members.
pub struct LoyaltyPlugin;

impl Plugin for LoyaltyPlugin {
    fn name(&self) -> &str {
        "loyalty"
    }

    fn register(&self, hooks: &mut Hooks) {
        Checkout::hooks(hooks).order_created(award_points);
    }
}

#[derive(Debug, thiserror::Error)]
enum LoyaltyError {
    #[error("unknown loyalty member `{0}`")]
    UnknownMember(String),
    #[error(transparent)]
    Service(#[from] hookflow::MissingService),
}

/// `order_created` (after): awards the points. Its failure does not undo the order: it is
/// reported next to the success.
async fn award_points(ctx: &HookContext, order: &Order) -> Result<(), LoyaltyError> {
    let Ok(LoyaltyExtras {
        loyalty_member: Some(member),
    }) = ctx.additional_data::<LoyaltyExtras>()
    else {
        return Ok(());
    };
    if !member.starts_with("m_") {
        return Err(LoyaltyError::UnknownMember(member));
    }
    let ledger = ctx.service::<LoyaltyLedger>()?;
    ledger.awards.lock().unwrap().push(Award {
        member,
        points: order.total / 100,
        order: order.id.clone(),
        request_id: ctx.request_id().map(str::to_owned),
        actor: ctx.actor().map(|a| a.id().to_owned()),
    });
    Ok(())
}
