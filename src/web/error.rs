//! The web layer's one error type: every failure a handler can meet, with its status.
//! API handlers answer it as JSON; page handlers render `error.html` with it.
use crate::actors::BookingError;
use crate::cluster::messages::Refusal;
use crate::db::DbError;
use crate::domain::DomainError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("{0}")]
    BadRequest(String),
    /// No valid admin session.
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { message: String, taken: Vec<String> },
    #[error("{0}")]
    Gone(String),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Unavailable(String),
    /// A limit on this client (seat spinning, wrong passwords, look-ups): try again later.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    /// Something broke on our side; the cause is logged, never sent.
    #[error("something went wrong on our side")]
    Internal(String),
}

impl WebError {
    pub fn title(&self) -> &'static str {
        match self {
            WebError::BadRequest(_) => "Bad request",
            WebError::Unauthorized(_) => "Log in first",
            WebError::Forbidden(_) => "Forbidden",
            WebError::NotFound(_) => "Not found",
            WebError::Conflict { .. } => "Already taken",
            WebError::Gone(_) => "Expired",
            WebError::TooLarge(_) => "Too large",
            WebError::Unprocessable(_) => "Cannot do that",
            WebError::Unavailable(_) => "Temporarily unavailable",
            WebError::TooManyRequests { .. } => "Too many requests",
            WebError::Internal(_) => "Server error",
        }
    }
}

impl WebError {
    /// Seconds until the client may try again (the `Retry-After` header), for a 429.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            WebError::TooManyRequests { retry_after_secs, .. } => Some(*retry_after_secs),
            _ => None,
        }
    }
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            WebError::Forbidden(_) => StatusCode::FORBIDDEN,
            WebError::NotFound(_) => StatusCode::NOT_FOUND,
            WebError::Conflict { .. } => StatusCode::CONFLICT,
            WebError::Gone(_) => StatusCode::GONE,
            WebError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            WebError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            WebError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let WebError::Internal(cause) = self {
            log::error!("internal error: {cause}");
        }
        let mut body = json!({ "error": self.to_string(), "status": self.status_code().as_u16() });
        if let WebError::Conflict { taken, .. } = self {
            body["taken"] = json!(taken);
        }
        let mut res = HttpResponse::build(self.status_code());
        if let Some(secs) = self.retry_after() {
            body["retry_after"] = json!(secs);
            res.insert_header(("Retry-After", secs.to_string()));
        }
        res.json(body)
    }
}

/// A refusal another node sent back: the error it stands for here.
impl From<Refusal> for WebError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::BadRequest { message } => WebError::BadRequest(message),
            Refusal::Unauthorized { message } => WebError::Unauthorized(message),
            Refusal::Forbidden { message } => WebError::Forbidden(message),
            Refusal::NotFound { message } => WebError::NotFound(message),
            Refusal::Conflict { message, taken } => WebError::Conflict { message, taken },
            Refusal::Gone { message } => WebError::Gone(message),
            Refusal::TooLarge { limit } => WebError::TooLarge(limit),
            Refusal::Unprocessable { message } => WebError::Unprocessable(message),
            Refusal::TooManyRequests { message, retry_after_secs } => {
                WebError::TooManyRequests { message, retry_after_secs }
            }
            Refusal::Unavailable { message } => WebError::Unavailable(message),
            Refusal::Failed => WebError::Internal("the master failed to carry out a request passed on to it".into()),
        }
    }
}

/// An error to send back to the node that passed the request on (the cause of an internal
/// error is logged here, not sent).
impl From<WebError> for Refusal {
    fn from(e: WebError) -> Self {
        match e {
            WebError::BadRequest(message) => Refusal::BadRequest { message },
            WebError::Unauthorized(message) => Refusal::Unauthorized { message },
            WebError::Forbidden(message) => Refusal::Forbidden { message },
            WebError::NotFound(message) => Refusal::NotFound { message },
            WebError::Conflict { message, taken } => Refusal::Conflict { message, taken },
            WebError::Gone(message) => Refusal::Gone { message },
            WebError::TooLarge(limit) => Refusal::TooLarge { limit },
            WebError::Unprocessable(message) => Refusal::Unprocessable { message },
            WebError::TooManyRequests { message, retry_after_secs } => {
                Refusal::TooManyRequests { message, retry_after_secs }
            }
            WebError::Unavailable(message) => Refusal::Unavailable { message },
            WebError::Internal(cause) => {
                log::error!("internal error in a request passed on by another node: {cause}");
                Refusal::Failed
            }
        }
    }
}

impl From<BookingError> for WebError {
    fn from(e: BookingError) -> Self {
        let msg = e.to_string();
        match e {
            BookingError::ShowNotFound | BookingError::HoldNotFound | BookingError::BookingNotFound => {
                WebError::NotFound(msg)
            }
            BookingError::SeatsTaken(taken) => WebError::Conflict { message: msg, taken },
            BookingError::HoldBusy | BookingError::KeyInProgress => WebError::Conflict { message: msg, taken: vec![] },
            BookingError::HoldExpired => WebError::Gone(msg),
            BookingError::NoSeatsTogether { .. } => WebError::Conflict { message: msg, taken: vec![] },
            BookingError::ShowStarted
            | BookingError::ShowWithdrawn
            | BookingError::UnknownSeats(_)
            | BookingError::WheelchairSpace(_)
            | BookingError::LonelySeat(_)
            | BookingError::UnknownCategory(_)
            | BookingError::TooLateToCancel(_) => WebError::Unprocessable(msg),
            BookingError::Unavailable(_) => WebError::Unavailable(msg),
            BookingError::TooManyHolds { message, retry_after_secs } => {
                WebError::TooManyRequests { message, retry_after_secs }
            }
        }
    }
}

impl From<DomainError> for WebError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::BadHoldId(_) => WebError::NotFound("no such hold".into()),
            DomainError::BadBookingCode(_) => WebError::NotFound("no booking with this code and email".into()),
            DomainError::BadIdempotencyKey | DomainError::BadClient | DomainError::BadTicket => {
                WebError::BadRequest(e.to_string())
            }
            other => WebError::Unprocessable(other.to_string()),
        }
    }
}

impl From<DbError> for WebError {
    fn from(e: DbError) -> Self {
        WebError::Internal(e.to_string())
    }
}

impl From<actix::MailboxError> for WebError {
    fn from(e: actix::MailboxError) -> Self {
        WebError::Unavailable(format!("the show is busy, try again ({e})"))
    }
}

impl From<tera::Error> for WebError {
    fn from(e: tera::Error) -> Self {
        use std::error::Error;
        let mut cause = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            cause.push_str(": ");
            cause.push_str(&s.to_string());
            src = s.source();
        }
        WebError::Internal(format!("template: {cause}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_crosses_nodes_with_its_status_and_details() {
        let errors = vec![
            WebError::BadRequest("bad".into()),
            WebError::Unauthorized("who".into()),
            WebError::Forbidden("no".into()),
            WebError::NotFound("none".into()),
            WebError::Conflict { message: "taken".into(), taken: vec!["C7".into()] },
            WebError::Gone("gone".into()),
            WebError::TooLarge(65536),
            WebError::Unprocessable("cannot".into()),
            WebError::TooManyRequests { message: "slow down".into(), retry_after_secs: 42 },
            WebError::Unavailable("later".into()),
        ];
        for e in errors {
            let (status, message, retry_after) = (e.status_code(), e.to_string(), e.retry_after());
            let wire = serde_json::to_string(&Refusal::from(e)).unwrap();
            let back = WebError::from(serde_json::from_str::<Refusal>(&wire).unwrap());
            assert_eq!(
                (back.status_code(), back.to_string(), back.retry_after()),
                (status, message, retry_after),
                "{wire}"
            );
        }
        let taken = WebError::from(Refusal::from(WebError::Conflict { message: "t".into(), taken: vec!["A1".into()] }));
        assert!(matches!(taken, WebError::Conflict { taken, .. } if taken == vec!["A1".to_string()]));
        // An internal error's cause stays on the node it happened on.
        let wire = serde_json::to_string(&Refusal::from(WebError::Internal("password=hunter2".into()))).unwrap();
        assert!(!wire.contains("hunter2"), "{wire}");
        assert_eq!(WebError::from(Refusal::Failed).status_code(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
