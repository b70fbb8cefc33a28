//! The calls whose request carries a secret (AuthEntity, AuthGetToken,
//! AuthChangeSecret, AuthValidateToken), made with a codec that wipes the
//! request once it is encoded.
//!
//! The generated client encodes with tonic's prost codec, which drops the
//! message as it is: the secret's `String` goes back to the allocator in
//! clear. Here the message travels as a [`SecretRequest`], whose every copy
//! overwrites its secret fields when dropped, the encoder's included.
//! (The encoded frame lives in tonic's and h2's buffers, which this crate
//! cannot reach; the PAM module wipes those with its allocator.)

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic_prost::ProstDecoder;
use zeroize::Zeroize;

use crate::client::MAX_MESSAGE_BYTES;
use crate::proto::netauth::v2 as pb;

/// An AuthRequest whose secret and token fields are wiped when it is dropped.
#[derive(Clone, Default)]
pub(crate) struct SecretRequest(pub(crate) pb::AuthRequest);

impl SecretRequest {
    fn wipe(&mut self) {
        let request = &mut self.0;
        for field in [
            request.secret.as_mut(),
            request.token.as_mut(),
            request.entity.as_mut().and_then(|e| e.secret.as_mut()),
        ]
        .into_iter()
        .flatten()
        {
            field.zeroize();
        }
    }
}

impl Drop for SecretRequest {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// The RPCs that take an AuthRequest.
#[derive(Clone, Copy, Debug)]
pub(crate) enum AuthRpc {
    Entity,
    GetToken,
    ValidateToken,
    ChangeSecret,
}

impl AuthRpc {
    fn method(self) -> &'static str {
        match self {
            AuthRpc::Entity => "AuthEntity",
            AuthRpc::GetToken => "AuthGetToken",
            AuthRpc::ValidateToken => "AuthValidateToken",
            AuthRpc::ChangeSecret => "AuthChangeSecret",
        }
    }

    fn path(self) -> PathAndQuery {
        PathAndQuery::from_static(match self {
            AuthRpc::Entity => "/netauth.v2.NetAuth2/AuthEntity",
            AuthRpc::GetToken => "/netauth.v2.NetAuth2/AuthGetToken",
            AuthRpc::ValidateToken => "/netauth.v2.NetAuth2/AuthValidateToken",
            AuthRpc::ChangeSecret => "/netauth.v2.NetAuth2/AuthChangeSecret",
        })
    }
}

/// One unary call of `rpc` on `channel`, as the generated client makes it
/// (same readiness error, limits and method extension), with the wiping codec.
pub(crate) async fn unary<Resp>(
    channel: Channel,
    rpc: AuthRpc,
    request: tonic::Request<SecretRequest>,
) -> Result<tonic::Response<Resp>, tonic::Status>
where
    Resp: Message + Default + Send + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    grpc.ready().await.map_err(|e| {
        let e: Box<dyn std::error::Error + Send + Sync> = e.into();
        tonic::Status::unknown(format!("Service was not ready: {e}"))
    })?;
    let mut request = request;
    request
        .extensions_mut()
        .insert(tonic::GrpcMethod::new("netauth.v2.NetAuth2", rpc.method()));
    grpc.unary(request, rpc.path(), WipingCodec(PhantomData))
        .await
}

struct WipingCodec<Resp>(PhantomData<Resp>);

impl<Resp: Message + Default + Send + 'static> Codec for WipingCodec<Resp> {
    type Encode = SecretRequest;
    type Decode = Resp;
    type Encoder = WipingEncoder;
    type Decoder = ProstDecoder<Resp>;

    fn encoder(&mut self) -> WipingEncoder {
        WipingEncoder
    }

    fn decoder(&mut self) -> ProstDecoder<Resp> {
        ProstDecoder::default()
    }
}

struct WipingEncoder;

impl Encoder for WipingEncoder {
    type Item = SecretRequest;
    type Error = tonic::Status;

    /// Encodes the message, then drops it: its secret fields are wiped.
    fn encode(&mut self, item: SecretRequest, buf: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        item.0
            .encode(buf)
            .map_err(|e| tonic::Status::internal(format!("cannot encode the request: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wipe_empties_every_secret_field() {
        let mut request = SecretRequest(pb::AuthRequest {
            entity: Some(crate::proto::Entity {
                id: Some("alice".into()),
                secret: Some("old-secret".into()),
                ..Default::default()
            }),
            secret: Some("new-secret".into()),
            token: Some("a-token".into()),
        });
        request.wipe();
        let inner = &request.0;
        assert_eq!(inner.secret.as_deref(), Some(""));
        assert_eq!(inner.token.as_deref(), Some(""));
        let entity = inner.entity.as_ref().unwrap();
        assert_eq!(entity.secret.as_deref(), Some(""));
        assert_eq!(entity.id.as_deref(), Some("alice"));
    }
}
