/// Why a piece of user input was refused. Every variant is the user's fault (a 4xx).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("'{0}' is not a seat label (expected a row letter and a number, like C7)")]
    BadSeat(String),
    #[error("choose at least one seat")]
    NoSeats,
    #[error("at most {max} seats can be held at once, not {got}")]
    TooManySeats { max: usize, got: usize },
    #[error("seat {0} is listed twice")]
    DuplicateSeat(String),
    #[error("'{0}' is not a valid email address")]
    BadEmail(String),
    #[error("the name must be 1 to 100 characters of text")]
    BadName,
    #[error("'{0}' is not a booking code")]
    BadBookingCode(String),
    #[error("'{0}' is not a hold id")]
    BadHoldId(String),
    #[error("the Idempotency-Key must be 1 to 128 visible ASCII characters")]
    BadIdempotencyKey,
    #[error("ask for 1 to {max} seats, not {got}")]
    BadBestCount { max: usize, got: i64 },
    #[error("'{0}' is not a seat category")]
    BadCategory(String),
    #[error("the client of a forwarded write is malformed")]
    BadClient,
    #[error("this is not a Marquee ticket")]
    BadTicket,
    #[error("this ticket's signature is not valid: it was not issued by this cinema")]
    ForgedTicket,
}
