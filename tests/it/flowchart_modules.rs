//! A workflow's flowchart finds each step's compensation where the step is defined: in the
//! workflow's module, or in a module of its own beside the workflow (`mod steps;`), even when
//! another module of the program has a step of the same name with another compensation.

use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("declined")]
pub struct Declined;

/// A shop whose steps live in a module of their own.
mod shop {
    use hookflow::prelude::*;

    use super::Declined;

    mod steps {
        use hookflow::prelude::*;

        use super::Declined;

        #[step(compensate = refund)]
        pub(super) async fn charge(
            _ctx: &StepContext,
            cents: u64,
        ) -> Result<StepResponse<u64, u64>, Declined> {
            Ok(StepResponse::new(cents, cents))
        }

        async fn refund(_ctx: &StepContext, _cents: u64) -> Result<(), Declined> {
            Ok(())
        }

        #[step(compensate = unreserve)]
        pub(super) async fn reserve(
            _ctx: &StepContext,
            cents: u64,
        ) -> Result<StepResponse<u64, u64>, Declined> {
            Ok(StepResponse::new(cents, cents))
        }

        async fn unreserve(_ctx: &StepContext, _cents: u64) -> Result<(), Declined> {
            Ok(())
        }
    }

    use steps::*;

    #[workflow(name = "shop_pay")]
    pub(super) async fn pay(ctx: &WorkflowContext, cents: u64) -> Result<u64, Declined> {
        let cents = reserve(ctx, cents).await?;
        charge(ctx, cents).await
    }
}

/// Elsewhere in the program: steps of the same names, with other compensations (or none).
mod elsewhere {
    use hookflow::prelude::*;

    use super::Declined;

    #[step(compensate = void)]
    async fn charge(_ctx: &StepContext, cents: u64) -> Result<StepResponse<u64, u64>, Declined> {
        Ok(StepResponse::new(cents, cents))
    }

    async fn void(_ctx: &StepContext, _cents: u64) -> Result<(), Declined> {
        Ok(())
    }

    #[step]
    async fn reserve(_ctx: &StepContext, cents: u64) -> Result<u64, Declined> {
        Ok(cents)
    }

    #[workflow(name = "elsewhere_pay")]
    pub(super) async fn pay(ctx: &WorkflowContext, cents: u64) -> Result<u64, Declined> {
        let cents = reserve(ctx, cents).await?;
        charge(ctx, cents).await
    }
}

#[test]
fn steps_in_a_module_beside_the_workflow_are_drawn_with_their_compensations() {
    let diagram = Engine::new().diagram::<shop::Pay>();
    assert!(
        diagram.contains(r#"n0["reserve<br/>undo: unreserve"]"#),
        "{diagram}"
    );
    assert!(
        diagram.contains(r#"n1["charge<br/>undo: refund"]"#),
        "{diagram}"
    );
    assert!(diagram.contains("n1 -. undo .-> n0"), "{diagram}");
}

#[test]
fn a_workflow_of_another_module_draws_its_own_steps() {
    let diagram = Engine::new().diagram::<elsewhere::Pay>();
    assert!(diagram.contains(r#"n0["reserve"]"#), "{diagram}");
    assert!(
        diagram.contains(r#"n1["charge<br/>undo: void"]"#),
        "{diagram}"
    );
}
