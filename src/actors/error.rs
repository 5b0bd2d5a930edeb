/// Why a booking operation was refused or failed. The web edge maps each to a status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BookingError {
    #[error("no such show")]
    ShowNotFound,
    #[error("this show has already started")]
    ShowStarted,
    #[error("this show is no longer on sale")]
    ShowWithdrawn,
    #[error("these seats do not exist in this theater: {}", .0.join(", "))]
    UnknownSeats(Vec<String>),
    #[error("these seats are already taken: {}", .0.join(", "))]
    SeatsTaken(Vec<String>),
    #[error("no such hold")]
    HoldNotFound,
    #[error("this hold has expired; its seats are free again")]
    HoldExpired,
    #[error("this hold is being confirmed right now; try again in a moment")]
    HoldBusy,
    #[error("a request with this Idempotency-Key is still in progress")]
    KeyInProgress,
    #[error("no booking with this code and email")]
    BookingNotFound,
    #[error("bookings can only be cancelled until {0}")]
    TooLateToCancel(String),
    #[error("the service cannot take this write now: {0}")]
    Unavailable(String),
}
