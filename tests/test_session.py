"""The session record and its window of recent hops (ussd/session.py), walked by the engine."""

from __future__ import annotations

import json

import pytest
from test_engine import ALICE, POLICY, walk

from ussd.engine import begin, reply_of, step
from ussd.rules import Language
from ussd.session import Session, advance


@pytest.mark.parametrize("inputs", [
    [], ["1"], ["1", "2"], ["1", "2", "1"], ["1", "4"], ["3"], ["3", "99"], ["1", "7"],
    ["1", "2", "0"], ["9", "9", "9"],
])
@pytest.mark.parametrize("language", [Language.FR, Language.EN])
def test_a_record_survives_dumps_and_loads(menu, inputs, language):
    session, _ = walk(menu, inputs, language=language)
    session = Session(**{**session.__dict__, "hop": len(inputs)})
    again = Session.loads(session.dumps())
    assert again == session
    assert reply_of(menu, again, POLICY) == reply_of(menu, session, POLICY)
    assert Session.loads(again.dumps().encode()) == session  # Redis may hand back bytes


def test_the_confirm_record_is_compact(menu):
    confirm, _ = walk(menu, ["1", "2"])
    confirm = Session(**{**confirm.__dict__, "hop": 12, "invalid": 2})
    record = confirm.dumps()
    assert len(record.encode()) < 150, record
    assert json.loads(record) == {
        "s": "confirm", "l": "fr", "n": 12, "v": {"target": "tigre", "left": 2},
        "b": ["main", "profiles"], "i": 2,
    }


def test_a_fresh_record_stores_no_defaults(menu):
    assert json.loads(begin(menu, ALICE, None, POLICY).dumps()) == {"s": "main", "l": "fr", "n": 0}


def test_a_record_is_written_byte_for_byte_as_before(menu):
    """Live sessions outlast a deploy: the record of a walked dialogue, with its window of
    recent hops, is the very text earlier versions wrote and read."""
    session = advance(None, begin(menu, ALICE, None, POLICY), 0)
    for hop, text in enumerate(["1", "2"], start=1):
        session = advance(session, step(menu, session, text, ALICE, POLICY).session, hop)
    record = ('{"s":"confirm","l":"fr","n":2,"v":{"target":"tigre","left":2},'
              '"b":["main","profiles"],"r":[[1,"profiles",0,0,{"current":"novamix"}],'
              '[0,"main",0,0,{}]]}')
    assert session.dumps() == record
    assert Session.loads(record) == session


def test_a_copy_with_a_field_the_record_does_not_have_is_refused(menu):
    session = begin(menu, ALICE, None, POLICY)
    assert session.changed(page=1, invalid=2) == Session(**{**session.__dict__, "page": 1,
                                                            "invalid": 2})
    with pytest.raises(TypeError, match="pages"):
        session.changed(pages=1)


def test_a_hop_before_a_language_change_replays_in_its_own_language(menu):
    """Found by the replay property (tests/promises/test_retries.py): the language a screen
    was shown in is kept with it in the window, when it is not the record's."""
    from ussd.session import replayed

    session = advance(None, begin(menu, ALICE, None, POLICY), 0)
    for hop, text in enumerate(["4", "2"], start=1):  # the language list, then English
        session = advance(session, step(menu, session, text, ALICE, POLICY).session, hop)
    assert session.language is Language.EN
    record = ('{"s":"language_set","l":"en","n":2,"b":["main","language"],'
              '"r":[[1,"language",0,0,{},"fr"],[0,"main",0,0,{},"fr"]]}')
    assert session.dumps() == record
    assert Session.loads(record) == session
    shown = replayed(Session.loads(record), 1)
    assert reply_of(menu, shown, POLICY).text.startswith("Langue / Language:\n")
    assert reply_of(menu, shown, POLICY).text.endswith("0 Retour | 00 Accueil")


def test_a_resume_screen_keeps_the_dialogue_it_offers(menu):
    confirm, _ = walk(menu, ["1", "2"])
    prompt = Session("resume", suspended=confirm)
    assert json.loads(prompt.dumps()) == {
        "s": "resume", "l": "fr", "n": 0,
        "z": {"s": "confirm", "l": "fr", "n": 0, "v": {"target": "tigre", "left": 2},
              "b": ["main", "profiles"]}}
    assert Session.loads(prompt.dumps()) == prompt
