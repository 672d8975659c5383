//! A loyalty plugin, written as a crate of its own would be: a `Plugin` that registers its
//! handlers on the checkout, and the service they use (`LoyaltyProgram`), which the
//! application registers on its engine.
//!
//! - `validate` (before): a loyalty card sent in the request's additional data
//!   (`{"loyalty_card": "LC-1001"}`) must be a known card, and the additional data must be
//!   well-formed; otherwise the checkout is rejected before any payment.
//! - `order_created` (after): credits a point per whole dollar charged to the card's
//!   account, or else to the signed-in customer's (the run's actor). A frozen account makes
//!   the handler fail: the order stands, and the failure is reported with it.
//!
//! Every credit records the run id, the request id and the actor it came from.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use hookflow::ActorKind;
use hookflow::prelude::*;
use serde::Deserialize;

use crate::workflow::{Checkout, CheckoutData, Order};

/// The plugin's name, as hook failures report it.
pub const NAME: &str = "loyalty";

/// The loyalty plugin: `hooks.plugin(LoyaltyPlugin)`.
pub struct LoyaltyPlugin;

impl Plugin for LoyaltyPlugin {
    fn name(&self) -> &str {
        NAME
    }

    fn register(&self, hooks: &mut Hooks) {
        Checkout::hooks(hooks)
            .validate(check_loyalty_card)
            .order_created(award_points);
    }
}

/// Why a loyalty handler failed.
#[derive(Debug, thiserror::Error)]
pub enum LoyaltyError {
    /// The additional data names a card the program does not know.
    #[error("unknown loyalty card {0}")]
    UnknownCard(String),
    /// The account is frozen: it earns no points.
    #[error("loyalty account {0} is frozen")]
    Frozen(String),
    /// The additional data is not what the plugin reads.
    #[error(transparent)]
    AdditionalData(#[from] AdditionalDataError),
    /// The application did not register the `LoyaltyProgram` service.
    #[error(transparent)]
    Service(#[from] MissingService),
}

/// The part of the request's additional data that the plugin reads.
#[derive(Debug, Deserialize)]
struct LoyaltyExtras {
    loyalty_card: Option<String>,
}

/// The loyalty program: accounts, the cards that point to them, and the credits made.
#[derive(Debug, Default)]
pub struct LoyaltyProgram {
    state: Mutex<Program>,
}

/// The program's state, behind [`LoyaltyProgram::lock`].
#[derive(Debug, Default)]
pub struct Program {
    /// Accounts by id.
    pub accounts: BTreeMap<String, Account>,
    /// Card code -> account id.
    pub cards: BTreeMap<String, String>,
    /// Every credit made, in order.
    pub credits: Vec<Credit>,
}

/// A loyalty account.
#[derive(Debug, Clone, Default)]
pub struct Account {
    /// The user who owns it, if it is linked to a customer account.
    pub owner: Option<String>,
    /// The points earned.
    pub points: u64,
    /// A frozen account earns nothing.
    pub frozen: bool,
}

/// Points credited for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    /// The account credited.
    pub account: String,
    /// The order.
    pub order_id: String,
    /// The points.
    pub points: u64,
    /// The run that created the order.
    pub run_id: String,
    /// The request that started the run.
    pub request_id: Option<String>,
    /// Who started the run, if known.
    pub actor: Option<String>,
}

impl LoyaltyProgram {
    /// Two accounts: `acct_ada` (user `usr_1`, card `LC-1001`) and `acct_bob` (user `usr_2`,
    /// card `LC-2002`), which is frozen.
    pub fn demo() -> Self {
        let mut program = Program::default();
        for (id, owner, card, frozen) in [
            ("acct_ada", "usr_1", "LC-1001", false),
            ("acct_bob", "usr_2", "LC-2002", true),
        ] {
            program.accounts.insert(
                id.into(),
                Account {
                    owner: Some(owner.into()),
                    points: 0,
                    frozen,
                },
            );
            program.cards.insert(card.into(), id.into());
        }
        LoyaltyProgram {
            state: Mutex::new(program),
        }
    }

    /// The program's state.
    pub fn lock(&self) -> MutexGuard<'_, Program> {
        self.state.lock().expect("loyalty program lock")
    }
}

/// The loyalty card in the run's additional data, if any.
fn loyalty_card(ctx: &HookContext) -> Result<Option<String>, LoyaltyError> {
    match ctx.additional_data::<LoyaltyExtras>() {
        Ok(extras) => Ok(extras.loyalty_card),
        Err(AdditionalDataError::Missing { .. }) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// `validate`: rejects an unknown loyalty card, or additional data the plugin cannot read.
async fn check_loyalty_card(
    ctx: &HookContext,
    data: CheckoutData,
) -> Result<CheckoutData, LoyaltyError> {
    if let Some(card) = loyalty_card(ctx)? {
        if !ctx
            .service::<LoyaltyProgram>()?
            .lock()
            .cards
            .contains_key(&card)
        {
            return Err(LoyaltyError::UnknownCard(card));
        }
    }
    Ok(data)
}

/// `order_created`: a point per whole dollar charged, to the card's account or else to the
/// signed-in customer's. A guest without a card earns nothing.
async fn award_points(ctx: &HookContext, order: &Order) -> Result<(), LoyaltyError> {
    let card = loyalty_card(ctx)?;
    let program = ctx.service::<LoyaltyProgram>()?;
    let mut guard = program.lock();
    let program = &mut *guard;
    let user = ctx
        .actor()
        .filter(|actor| actor.kind() == ActorKind::User)
        .map(Actor::id);
    let account_id = match (&card, user) {
        (Some(card), _) => program.cards.get(card).cloned(),
        (None, Some(user)) => program
            .accounts
            .iter()
            .find(|(_, account)| account.owner.as_deref() == Some(user))
            .map(|(id, _)| id.clone()),
        (None, None) => None,
    };
    let Some((account_id, account)) =
        account_id.and_then(|id| program.accounts.get_mut(&id).map(|a| (id, a)))
    else {
        return Ok(());
    };
    if account.frozen {
        return Err(LoyaltyError::Frozen(account_id));
    }
    let points = order.charged / 100;
    account.points += points;
    program.credits.push(Credit {
        account: account_id,
        order_id: order.id.clone(),
        points,
        run_id: ctx.run_id().to_string(),
        request_id: ctx.request_id().map(str::to_owned),
        actor: ctx.actor().map(|actor| actor.id().to_owned()),
    });
    Ok(())
}
