// A generic workflow, run with two types; its hook points are per type.
use hookflow::prelude::*;

trait Catalog: Default + Send + Sync + 'static {
    const NAME: &'static str;
}
#[derive(Default)]
struct Shopify;
#[derive(Default)]
struct Magento;
impl Catalog for Shopify {
    const NAME: &'static str = "shopify";
}
impl Catalog for Magento {
    const NAME: &'static str = "magento";
}

#[derive(Debug, thiserror::Error)]
#[error("sync failed")]
struct SyncError;

#[step]
async fn fetch<C: Catalog>(_ctx: &StepContext, _catalog: C) -> Result<String, SyncError> {
    Ok(C::NAME.to_owned())
}

#[workflow(hooks(fetched: after<String>))]
async fn sync_catalog<C: Catalog>(ctx: &WorkflowContext, _input: ()) -> Result<String, SyncError> {
    let name = fetch(ctx, C::default()).await?;
    ctx.hook(SyncCatalog::<C>::FETCHED, &name).await;
    Ok(name)
}

async fn log(_ctx: &HookContext, name: &String) -> Result<(), SyncError> {
    println!("fetched {name}");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut hooks = Hooks::new();
    SyncCatalog::<Shopify>::hooks(&mut hooks).fetched(log);
    let engine = Engine::builder().hooks(hooks).build();
    let shopify = SyncCatalog::<Shopify>::run(&engine, ()).await;
    let magento = engine.run::<SyncCatalog<Magento>>(()).await;
    assert_eq!(shopify.output().map(String::as_str), Some("shopify"));
    assert_eq!(magento.output().map(String::as_str), Some("magento"));
}
