// A generic step, called with two types; a generic step whose output is its type parameter.
use hookflow::prelude::*;

trait Source: Send + 'static {
    fn rows(&self) -> u64;
}
struct Csv;
struct Api;
impl Source for Csv {
    fn rows(&self) -> u64 { 3 }
}
impl Source for Api {
    fn rows(&self) -> u64 { 5 }
}

#[derive(Debug, thiserror::Error)]
#[error("import failed")]
struct ImportError;

#[step]
async fn import<S: Source>(_ctx: &StepContext, source: S) -> Result<u64, ImportError> {
    Ok(source.rows())
}

#[step]
async fn parse<T>(_ctx: &StepContext, text: String) -> Result<T, ImportError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    serde_json::from_str(&text).map_err(|_| ImportError)
}

#[workflow]
async fn import_all(ctx: &WorkflowContext, extra: String) -> Result<u64, ImportError> {
    let csv = import(ctx, Csv).await?;
    let api = import(ctx, Api).await?;
    let extra: u64 = parse(ctx, extra).await?;
    Ok(csv + api + extra)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let engine = Engine::builder().build();
    assert_eq!(ImportAll::run(&engine, "2".into()).await.output().copied(), Some(10));
}
