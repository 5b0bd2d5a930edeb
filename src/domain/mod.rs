//! Parsed user input and identifiers. Everything that crosses the web edge becomes one of
//! these types first; the core never sees raw strings.
mod client;
mod code;
mod customer;
mod error;
mod ids;
mod layout;
mod password;
mod seat;
mod ticket;

pub use client::Client;
pub use code::{random_token, BookingCode};
pub use customer::{CustomerName, Email};
pub use error::DomainError;
pub use ids::{HoldId, IdempotencyKey, ShowId};
pub use layout::{
    CategoryText, LayoutError, LayoutText, Place, RowText, SeatKind, MAX_CATEGORIES, MAX_ROWS, MAX_ROW_PLACES,
};
pub use password::{AdminPassword, MIN_PASSWORD_LEN};
pub use seat::{BestRequest, SeatLabel, SeatSelection, MAX_SEATS_PER_HOLD};
pub use ticket::{TicketKey, TicketToken};
