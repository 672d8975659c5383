//! The checkout's steps, each with its compensation where it changes the world.

use super::*;

/// Validates the cart: it exists and is not empty.
#[step]
pub(super) async fn load_cart(ctx: &StepContext, cart_id: String) -> Result<Cart, CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let cart = shop
        .lock()
        .carts
        .get(&cart_id)
        .cloned()
        .ok_or(CheckoutError::CartNotFound(cart_id))?;
    if cart.lines.is_empty() {
        return Err(CheckoutError::EmptyCart(cart.id));
    }
    Ok(cart)
}

/// Prices each line from the catalog.
#[step]
pub(super) async fn price_cart(ctx: &StepContext, cart: Cart) -> Result<PricedCart, CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let state = shop.lock();
    let lines = cart
        .lines
        .iter()
        .map(|line| {
            let unit_price = *state
                .prices
                .get(&line.sku)
                .ok_or_else(|| CheckoutError::UnknownProduct(line.sku.clone()))?;
            Ok(PricedLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price,
            })
        })
        .collect::<Result<Vec<_>, CheckoutError>>()?;
    let total = lines
        .iter()
        .map(|l| l.unit_price * Cents::from(l.quantity))
        .sum();
    Ok(PricedCart {
        id: cart.id,
        email: cart.email,
        lines,
        total,
    })
}

/// Checks that every line is in stock (nothing is held yet).
#[step]
pub(super) async fn check_inventory(
    ctx: &StepContext,
    lines: Vec<PricedLine>,
) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let state = shop.lock();
    for line in &lines {
        let available = state.stock.get(&line.sku).copied().unwrap_or(0);
        if available < line.quantity {
            return Err(CheckoutError::OutOfStock {
                sku: line.sku.clone(),
                available,
                wanted: line.quantity,
            });
        }
    }
    Ok(())
}

/// Asks the tax service for the tax on the cart; gives up after 2 s.
#[step(timeout = "2s")]
pub(super) async fn calculate_tax(
    ctx: &StepContext,
    cart: PricedCart,
) -> Result<Cents, CheckoutError> {
    let delay = ctx.service::<Shop>()?.lock().tax_service_delay_secs;
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
    }
    Ok(cart.total * 8 / 100)
}

fn provider_unavailable(err: &CheckoutError) -> bool {
    matches!(err, CheckoutError::ProviderUnavailable)
}

// The payment provider's steps, as methods of the shop (the service the workflow gets with
// `ctx.service::<Shop>()`): `shop.authorize_payment(ctx, request)`. Their compensations are
// associated functions, which find the shop through their context (a compensation that takes
// `&self` would run on a clone of the service, and the shop, holding its state, is not
// `Clone`).
impl Shop {
    /// Authorizes the payment, retrying while the provider is unavailable; undone by voiding the
    /// authorization.
    #[step(
        compensate = Self::void_authorization,
        retry(max = 3, backoff = "50ms", when = provider_unavailable),
    )]
    pub(super) async fn authorize_payment(
        &self,
        ctx: &StepContext,
        request: PaymentRequest,
    ) -> Result<StepResponse<Authorization, String>, CheckoutError> {
        let mut state = self.lock();
        let key = ctx.idempotency_key();
        let id = match state.made_by(&key) {
            Some(id) => id,
            None => {
                if state.provider_unavailable_for > 0 {
                    state.provider_unavailable_for -= 1;
                    return Err(CheckoutError::ProviderUnavailable);
                }
                let id = state.new_id("auth", key);
                state.payments.insert(
                    id.clone(),
                    format!(
                        "authorized {} for {}",
                        money(request.amount),
                        request.cart_id
                    ),
                );
                id
            }
        };
        let auth = Authorization {
            id: id.clone(),
            amount: request.amount,
        };
        Ok(StepResponse::new(auth, id))
    }

    async fn void_authorization(ctx: &StepContext, auth_id: String) -> Result<(), CheckoutError> {
        let shop = ctx.service::<Shop>()?;
        if let Some(payment) = shop.lock().payments.get_mut(&auth_id) {
            *payment = format!("voided ({payment})");
        }
        Ok(())
    }

    /// Captures the authorized payment; undone by refunding it.
    #[step(compensate = Self::refund_payment)]
    pub(super) async fn capture_payment(
        &self,
        _ctx: &StepContext,
        auth: Authorization,
        cart_id: String,
    ) -> Result<StepResponse<(), String>, CheckoutError> {
        let mut state = self.lock();
        if state.decline_capture.contains(&cart_id) {
            return Err(CheckoutError::PaymentDeclined(format!(
                "capture of {} refused by the card issuer",
                auth.id
            )));
        }
        state
            .payments
            .insert(auth.id.clone(), format!("captured {}", money(auth.amount)));
        Ok(StepResponse::new((), auth.id))
    }

    async fn refund_payment(ctx: &StepContext, auth_id: String) -> Result<(), CheckoutError> {
        let shop = ctx.service::<Shop>()?;
        if let Some(payment) = shop.lock().payments.get_mut(&auth_id) {
            *payment = format!("refunded ({payment})");
        }
        Ok(())
    }
}

/// Creates the order; undone by cancelling it.
#[step(compensate = cancel_order)]
pub(super) async fn create_order(
    ctx: &StepContext,
    cart: PricedCart,
    tax: Cents,
    auth: Authorization,
) -> Result<StepResponse<Order, String>, CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    let key = ctx.idempotency_key();
    let id = match state.made_by(&key) {
        Some(id) => id,
        None => {
            let id = state.new_id("order", key);
            state.orders.insert(id.clone(), "placed".to_owned());
            id
        }
    };
    let order = Order {
        id: id.clone(),
        cart_id: cart.id,
        email: cart.email,
        lines: cart.lines,
        total: cart.total,
        tax,
        charged: auth.amount,
    };
    Ok(StepResponse::new(order, id))
}

async fn cancel_order(ctx: &StepContext, order_id: String) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    shop.lock().orders.insert(order_id, "cancelled".to_owned());
    Ok(())
}

/// The data `release_inventory` needs: where, which reservation, and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reservation {
    warehouse: String,
    id: String,
    lines: Vec<LineItem>,
}

/// Takes the lines out of one warehouse's stock; undone by putting them back.
#[step(compensate = release_inventory)]
pub(super) async fn reserve_inventory(
    ctx: &StepContext,
    warehouse: String,
    lines: Vec<LineItem>,
) -> Result<StepResponse<String, Reservation>, CheckoutError> {
    // The warehouses answer over the network: let the other branch run meanwhile.
    tokio::task::yield_now().await;
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    let key = ctx.idempotency_key();
    let id = match state.made_by(&key) {
        Some(id) => id,
        None => {
            for line in &lines {
                let key = (warehouse.clone(), line.sku.clone());
                let available = state.warehouse_stock.get(&key).copied().unwrap_or(0);
                if available < line.quantity {
                    return Err(CheckoutError::OutOfStock {
                        sku: format!("{} in {warehouse}", line.sku),
                        available,
                        wanted: line.quantity,
                    });
                }
                state.warehouse_stock.insert(key, available - line.quantity);
            }
            let id = state.new_id("res", key);
            state.reservations.insert(id.clone(), lines.clone());
            id
        }
    };
    Ok(StepResponse::new(
        id.clone(),
        Reservation {
            warehouse,
            id,
            lines,
        },
    ))
}

async fn release_inventory(
    ctx: &StepContext,
    reservation: Reservation,
) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    if state.warehouse_down_on_release.as_ref() == Some(&reservation.warehouse) {
        return Err(CheckoutError::WarehouseDown(format!(
            "could not release {} in {}",
            reservation.id, reservation.warehouse
        )));
    }
    // Released once: run again after a crash, it finds nothing left to put back.
    if state.reservations.remove(&reservation.id).is_none() {
        return Ok(());
    }
    for line in &reservation.lines {
        *state
            .warehouse_stock
            .entry((reservation.warehouse.clone(), line.sku.clone()))
            .or_default() += line.quantity;
    }
    Ok(())
}

/// Emails the confirmation. Best effort: a mail outage does not undo a paid order.
#[step(best_effort)]
pub(super) async fn send_confirmation_email(
    ctx: &StepContext,
    order: Order,
) -> Result<(), CheckoutError> {
    let shop = ctx.service::<Shop>()?;
    let mut state = shop.lock();
    if state.mail_down {
        return Err(CheckoutError::MailRefused(order.email));
    }
    state
        .emails
        .push(format!("to {}: order {}", order.email, order.id));
    Ok(())
}

/// Asks the warehouses to ship. Best effort: the fulfillment team retries by hand.
#[step(best_effort)]
pub(super) async fn request_fulfillment(
    ctx: &StepContext,
    order: Order,
) -> Result<(), CheckoutError> {
    ctx.service::<Shop>()?
        .lock()
        .fulfillment_requests
        .push(order.id);
    Ok(())
}

/// Which warehouse ships which line: t-shirts from the east, everything else from the west.
pub(super) fn split_by_warehouse(lines: &[PricedLine]) -> (Vec<LineItem>, Vec<LineItem>) {
    lines
        .iter()
        .map(|l| LineItem {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .partition(|l| l.sku == "tshirt")
}
