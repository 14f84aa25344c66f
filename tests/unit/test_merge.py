"""Per-field merge: the newest change of each field wins, whatever the arrival order."""

from __future__ import annotations

from webhook_adapter.merge import ContactState, FieldState, digest, merge
from webhook_adapter.model import ContactField, FieldValue, SourceEvent

T0 = 1_700_000_000_000
"""A change time, epoch milliseconds."""


def event(key: str, occurred_at: int, changes: dict[ContactField, FieldValue]) -> SourceEvent:
    return SourceEvent(
        key=key, event_id=key, contact_id="62515:51", occurred_at=occurred_at, kind="test", changes=changes
    )


def stored(**values: tuple[FieldValue, int, str]) -> ContactState:
    return ContactState(
        fields={
            ContactField(name): FieldState(value=value, occurred_at=at, event=digest(key))
            for name, (value, at, key) in values.items()
        }
    )


def test_newer_change_wins_over_the_stored_value() -> None:
    # Given a stored city from T0
    state = stored(city=("Springfield", T0, "a"))

    # When a change one second newer arrives
    result = merge(state, [event("b", T0 + 1000, {ContactField.CITY: "Chicago"})])

    # Then it holds the field
    assert result.fields[ContactField.CITY] == FieldState(value="Chicago", occurred_at=T0 + 1000, event=digest("b"))
    assert result.won == {"b": frozenset({ContactField.CITY})}
    assert result.lost == {"b": frozenset()}


def test_older_change_arriving_late_is_superseded() -> None:
    # Given a stored city from T0
    state = stored(city=("Chicago", T0, "b"))

    # When a change from before T0 arrives late
    result = merge(state, [event("a", T0 - 1, {ContactField.CITY: "Springfield"})])

    # Then the stored value stays and the late change lost the field
    assert result.fields[ContactField.CITY].value == "Chicago"
    assert result.won == {"a": frozenset()}
    assert result.lost == {"a": frozenset({ContactField.CITY})}


def test_redelivery_of_the_stored_change_counts_as_won() -> None:
    # Given the stored city came from event "a" at T0
    state = stored(city=("Chicago", T0, "a"))

    # When the same event is merged again (same time, same key)
    result = merge(state, [event("a", T0, {ContactField.CITY: "Chicago"})])

    # Then it still holds the field (so its outcome is not "superseded")
    assert result.won == {"a": frozenset({ContactField.CITY})}
    assert result.lost == {"a": frozenset()}
    assert result.fields[ContactField.CITY] == FieldState(value="Chicago", occurred_at=T0, event=digest("a"))


def test_tie_on_time_is_broken_by_the_key_digest() -> None:
    # Given two changes of the same field at the same millisecond
    first = event("portal:51:city:1:100", T0, {ContactField.CITY: "Springfield"})
    second = event("portal:51:city:1:200", T0, {ContactField.CITY: "Chicago"})
    winner, loser = sorted([first, second], key=lambda item: digest(item.key), reverse=True)

    # When merged in either order
    forward = merge(ContactState(), [first, second])
    backward = merge(ContactState(), [second, first])

    # Then the one with the greater key digest wins both times (stable, whatever the arrival order)
    assert forward.fields[ContactField.CITY].value == winner.changes[ContactField.CITY]
    assert backward.fields == forward.fields
    assert forward.won[winner.key] == frozenset({ContactField.CITY})
    assert forward.lost[loser.key] == frozenset({ContactField.CITY})


def test_tie_on_time_with_the_stored_value_is_broken_by_the_key_digest() -> None:
    # Given a stored city from key "m" at T0, and two keys whose digests sort below and above its digest
    state = stored(city=("Springfield", T0, "m"))
    keys = sorted("abcdefghijklnopqrstuvwxyz", key=digest)
    below = next(key for key in keys if digest(key) < digest("m"))
    above = next(key for key in reversed(keys) if digest(key) > digest("m"))

    # When changes at the same time arrive with each
    result = merge(state, [event(below, T0, {ContactField.CITY: "Chicago"})])
    later = merge(state, [event(above, T0, {ContactField.CITY: "Chicago"})])

    # Then only the greater digest replaces the stored value
    assert result.fields[ContactField.CITY].value == "Springfield"
    assert result.lost[below] == frozenset({ContactField.CITY})
    assert later.fields[ContactField.CITY].value == "Chicago"
    assert later.won[above] == frozenset({ContactField.CITY})


def test_only_the_newest_of_several_changes_in_one_call_wins() -> None:
    # Given three changes of the email in one message, newest first
    newest = event("c", T0 + 2, {ContactField.EMAIL: "new@example.com"})
    middle = event("b", T0 + 1, {ContactField.EMAIL: "mid@example.com"})
    oldest = event("a", T0, {ContactField.EMAIL: "old@example.com"})

    # When merged
    result = merge(ContactState(), [newest, oldest, middle])

    # Then the newest holds the field and the other two lost it
    assert result.fields[ContactField.EMAIL].value == "new@example.com"
    assert result.won == {"c": frozenset({ContactField.EMAIL}), "a": frozenset(), "b": frozenset()}
    assert result.lost == {"c": frozenset(), "a": frozenset({ContactField.EMAIL}), "b": frozenset({ContactField.EMAIL})}


def test_fields_untouched_by_the_events_are_kept() -> None:
    # Given a stored email and city
    state = stored(email=("jane@example.com", T0, "a"), city=("Springfield", T0, "a"))

    # When a change of the city only arrives
    result = merge(state, [event("b", T0 + 1, {ContactField.CITY: "Chicago"})])

    # Then the email is as stored
    assert result.fields[ContactField.EMAIL] == FieldState(value="jane@example.com", occurred_at=T0, event=digest("a"))
    assert result.fields[ContactField.CITY].value == "Chicago"


def test_an_event_can_win_some_fields_and_lose_others() -> None:
    # Given a stored city newer than the incoming event, and an older stored postal code
    state = stored(city=("Chicago", T0 + 10, "z"), postal_code=("62701", T0 - 10, "y"))

    # When one event changes both
    result = merge(state, [event("b", T0, {ContactField.CITY: "Springfield", ContactField.POSTAL_CODE: "60601"})])

    # Then it wins the postal code and loses the city
    assert result.won["b"] == frozenset({ContactField.POSTAL_CODE})
    assert result.lost["b"] == frozenset({ContactField.CITY})
    assert result.fields[ContactField.CITY].value == "Chicago"
    assert result.fields[ContactField.POSTAL_CODE].value == "60601"


def test_a_newer_clear_wins_over_a_value() -> None:
    # Given a stored phone
    state = stored(phone=("+13125550123", T0, "a"))

    # When the CRM clears it later
    result = merge(state, [event("b", T0 + 1, {ContactField.PHONE: None})])

    # Then the field is known to be cleared
    assert result.fields[ContactField.PHONE] == FieldState(value=None, occurred_at=T0 + 1, event=digest("b"))
    assert result.won["b"] == frozenset({ContactField.PHONE})


def test_merge_leaves_the_stored_state_alone() -> None:
    # Given a stored state
    state = stored(city=("Springfield", T0, "a"))

    # When merged with a newer change
    merge(state, [event("b", T0 + 1, {ContactField.CITY: "Chicago"})])

    # Then the input state is unchanged (the caller saves the result, not the input)
    assert state.fields[ContactField.CITY].value == "Springfield"


def test_event_without_changes_wins_and_loses_nothing() -> None:
    result = merge(ContactState(), [event("a", T0, {})])
    assert result.won == {"a": frozenset()}
    assert result.lost == {"a": frozenset()}
    assert result.fields == {}
