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
    #[error("{} {} a wheelchair space: tick \"I need a wheelchair space\" to hold one", .0.join(", "), if .0.len() == 1 { "is" } else { "are" })]
    WheelchairSpace(Vec<String>),
    #[error("this would leave seat {0} empty on its own; choose seats next to it, or leave at least two")]
    LonelySeat(String),
    #[error("this show has no {count} free {}seats together, or in two groups", if *.wheelchair { "wheelchair and companion " } else { "" })]
    NoSeatsTogether { count: usize, wheelchair: bool },
    #[error("this theater has no seat category '{0}'")]
    UnknownCategory(String),
    /// A seat-spinning limit: this client may try again after `retry_after_secs`.
    #[error("{message}")]
    TooManyHolds { message: String, retry_after_secs: u64 },
}

impl BookingError {
    /// The kind of refusal as a short fixed name (the `outcome` label of the seat-write
    /// metrics; never the seats or the message).
    pub fn kind(&self) -> &'static str {
        match self {
            BookingError::ShowNotFound => "show_not_found",
            BookingError::ShowStarted => "show_started",
            BookingError::ShowWithdrawn => "show_withdrawn",
            BookingError::UnknownSeats(_) => "unknown_seats",
            BookingError::SeatsTaken(_) => "seats_taken",
            BookingError::HoldNotFound => "hold_not_found",
            BookingError::HoldExpired => "hold_expired",
            BookingError::HoldBusy => "hold_busy",
            BookingError::KeyInProgress => "key_in_progress",
            BookingError::BookingNotFound => "booking_not_found",
            BookingError::TooLateToCancel(_) => "too_late_to_cancel",
            BookingError::Unavailable(_) => "unavailable",
            BookingError::WheelchairSpace(_) => "wheelchair_space",
            BookingError::LonelySeat(_) => "lonely_seat",
            BookingError::NoSeatsTogether { .. } => "no_seats_together",
            BookingError::UnknownCategory(_) => "unknown_category",
            BookingError::TooManyHolds { .. } => "too_many_holds",
        }
    }
}

impl From<super::seating::PlacementRefusal> for BookingError {
    fn from(r: super::seating::PlacementRefusal) -> Self {
        match r {
            super::seating::PlacementRefusal::WheelchairSpace(seats) => BookingError::WheelchairSpace(seats),
            super::seating::PlacementRefusal::LonelySeat(seat) => BookingError::LonelySeat(seat),
        }
    }
}

impl From<super::seat_map::LimitRefusal> for BookingError {
    fn from(r: super::seat_map::LimitRefusal) -> Self {
        use super::seat_map::LimitRefusal;
        let retry_after_secs = r.retry_after().as_secs().max(1);
        let message = match r {
            LimitRefusal::TooManySeats { held, max, .. } => format!(
                "you already hold {held} seats of this show; at most {max} can be held at once. \
                 Confirm or release a hold first, or try again in {retry_after_secs} s"
            ),
            LimitRefusal::TooManyHolds { max, .. } => {
                format!("too many holds on this show: at most {max} a minute; try again in {retry_after_secs} s")
            }
            LimitRefusal::CoolingOff { seats, .. } => format!(
                "your hold on {} expired a moment ago; they are left for others for {retry_after_secs} s",
                seats.join(", ")
            ),
        };
        BookingError::TooManyHolds { message, retry_after_secs }
    }
}

#[cfg(test)]
mod tests {
    use super::BookingError;

    #[test]
    fn a_refusal_kind_names_the_kind_not_the_seats() {
        assert_eq!(BookingError::SeatsTaken(vec!["A1".into()]).kind(), "seats_taken");
        assert_eq!(BookingError::TooLateToCancel("2026-12-06 19:00 UTC".into()).kind(), "too_late_to_cancel");
        assert_eq!(BookingError::NoSeatsTogether { count: 3, wheelchair: true }.kind(), "no_seats_together");
    }
}
