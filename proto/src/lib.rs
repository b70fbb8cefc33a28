//! Generated NetAuth wire types and gRPC stubs (client and server).
//! netauth-core wraps these in its own types; the test server implements the trait.
//! The module tree mirrors the proto packages because prost refers from
//! `netauth.v2` to the package-less messages as `super::super::Entity`.
#![allow(clippy::all, missing_docs, non_snake_case)]

tonic::include_proto!("_");

pub mod netauth {
    pub mod v2 {
        tonic::include_proto!("netauth.v2");
    }
}
