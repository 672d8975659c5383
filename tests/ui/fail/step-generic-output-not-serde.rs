// A generic step whose output is its type parameter must say that it can be journaled.
use hookflow::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct ParseError;

#[step]
async fn parse<T: Default + Send + 'static>(_ctx: &StepContext, _text: String) -> Result<T, ParseError> {
    Ok(T::default())
}

fn main() {}
