//! Stage 2, image → verification: the verifier's events, the tag-pair rule, provenance (only
//! what pushdeploy built), what `latest` should name, and the verifier service that applies them
//! and hands verified images to the rollout.

pub mod events;
pub mod gate;
pub mod judge;
pub mod provenance;
pub mod release;
pub mod tag_pair;
pub mod verifier;
