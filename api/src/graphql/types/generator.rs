//! `GeneratorInfo`.

use boards_shared::generators::Registered;
use juniper::graphql_object;

use super::enums::ArtifactType;
use crate::graphql::{
    context::Context,
    errors::GqlResult,
    scalars::{BoardsScalar, Json},
};

pub struct GeneratorInfoObj(pub Registered);

#[graphql_object(name = "GeneratorInfo", context = Context, scalar = BoardsScalar)]
impl GeneratorInfoObj {
    fn name(&self) -> &str {
        &self.0.name
    }
    fn description(&self) -> &str {
        &self.0.description
    }
    fn artifact_type(&self) -> GqlResult<ArtifactType> {
        Ok(ArtifactType::from_db(self.0.artifact_type.as_str())?)
    }
    /// JSON Schema of the inputs (Pydantic conventions, contract §1.4).
    fn input_schema(&self) -> Json {
        Json(self.0.input_schema.clone())
    }
    /// Whether this deployment can run it (a provider model needs its provider's key);
    /// `createGeneration` refuses unavailable generators.
    fn available(&self) -> bool {
        self.0.unavailable.is_none()
    }
    /// Why it is unavailable (`fal.ai: no API key is configured ...`), if it is.
    fn unavailable_reason(&self) -> Option<&str> {
        self.0.unavailable.as_deref()
    }
    /// The upstream service (`fal`, `replicate`, `openai`, `kie`); null for generators that
    /// run in the worker itself.
    fn provider(&self) -> Option<&str> {
        self.0.entry().map(|e| e.provider.as_str())
    }
}
