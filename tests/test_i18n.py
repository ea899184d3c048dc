"""Interface languages: every bundled language has every English key with the same placeholders; lookups fall back
to English once-reported; numbers follow the language; files are bounded; --lang and the remembered choice."""
import io
import json
import string

import pytest

from llmviz.common.atomic import write_atomic
from llmviz.common import i18n


@pytest.fixture(autouse=True)
def english_after():
    yield
    i18n.set_language("en")


def _fields(text):
    # an independent reading of a text's fields: every field name Python's own formatter would look up
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _write_lang(root, code, files):
    (root / code).mkdir(parents=True)
    for name, text in files.items():
        write_atomic(root / code / name, text)


def test_at_least_english_and_vietnamese_are_bundled():
    assert {"en", "vi"} <= set(i18n.available())
    assert i18n.available()[0] == "en"


@pytest.mark.parametrize("code", [c for c in i18n.available() if c != "en"])
def test_every_english_key_exists_in_every_language_with_the_same_placeholders(code):
    english, other = i18n.load("en").texts, i18n.load(code).texts
    assert sorted(set(english) - set(other)) == [], f"{code} lacks these keys"
    assert sorted(set(other) - set(english)) == [], f"{code} has keys English has not"
    wrong = [key for key in english if _fields(english[key]) != _fields(other[key])]
    assert wrong == [], f"{code}: placeholders differ from English"
    assert i18n.check(code).ok


@pytest.mark.parametrize("code", i18n.available())
def test_every_text_fills_in_with_values_for_its_fields(code):
    i18n.set_language(code)
    translator = i18n.translator()
    for key, text in translator.language.texts.items():
        values = {name: 1 for name in _fields(text)}  # a number suits {n:,} and {x:.2f} and plain {name}
        try:
            text.format(**values)
        except (ValueError, TypeError):
            values = {name: "x" for name in _fields(text)}
            text.format(**values)  # a text field: raises here (the test fails) if neither fits


def test_vietnamese_is_not_english_copied():
    english, vietnamese = i18n.load("en").texts, i18n.load("vi").texts
    same = [k for k in english if english[k] == vietnamese[k] and any(c.isalpha() for c in english[k])
            and len(english[k]) > 12]
    # a few texts are names or formulas in both languages; most must differ
    assert len(same) <= 0.1 * len(english), same


def test_a_missing_key_falls_back_to_english_and_is_reported_once(tmp_path):
    _write_lang(tmp_path, "en", {"language.toml": 'name = "English"\ndecimal = "."\ngroup = ","\n',
                                 "menu.toml": '[file]\nopen = "Open {name}"\nquit = "Quit"\n'})
    _write_lang(tmp_path, "xx", {"language.toml": 'name = "Test"\ndecimal = ","\ngroup = " "\n',
                                 "menu.toml": '[file]\nopen = "Öffne {name}"\n'})
    i18n.set_language("xx", tmp_path)
    translator = i18n.translator()
    stream = io.StringIO()
    translator.report_stream = stream
    assert i18n.tr("menu.file.open", name="a") == "Öffne a"
    assert i18n.tr("menu.file.quit") == "Quit"
    assert i18n.tr("menu.file.quit") == "Quit"
    assert stream.getvalue().count("menu.file.quit") == 1
    assert i18n.tr("menu.file.nothing") == "menu.file.nothing"  # not even English has it: the key, no crash
    assert i18n.tr("menu.file.open") == "Öffne {name}"  # a value not given: the text unfilled, no crash
    result = i18n.check("xx", tmp_path)
    assert result.missing == ("menu.file.quit",) and not result.ok
    assert any("menu.file.quit" in line for line in result.lines())


def test_a_text_that_cannot_be_filled_in_falls_back_instead_of_raising(tmp_path):
    _write_lang(tmp_path, "en", {"language.toml": 'name = "English"\n', "a.toml": 'n = "{n} items"\n'})
    _write_lang(tmp_path, "xx", {"language.toml": 'name = "X"\n', "a.toml": 'n = "{count} Dinge"\n'})
    i18n.set_language("xx", tmp_path)
    i18n.translator().report_stream = io.StringIO()
    assert i18n.tr("a.n", n=3) == "3 items"
    assert i18n.check("xx", tmp_path).mismatched == (("a.n", frozenset({"n"}), frozenset({"count"})),)


@pytest.mark.parametrize("value, spec, english, vietnamese", [
    (1234.5, ",.1f", "1,234.5", "1.234,5"),          # the example: decimal comma, dot grouping
    (0.25, ".3f", "0.250", "0,250"),
    (1234567, ",", "1,234,567", "1.234.567"),
    (-3.5, "+.2f", "-3.50", "-3,50"),
    (12, "", "12", "12"),
])
def test_numbers_are_written_the_languages_way(value, spec, english, vietnamese):
    i18n.set_language("en")
    assert i18n.num(value, spec) == english
    i18n.set_language("vi")
    assert i18n.num(value, spec) == vietnamese


def test_numbers_inside_texts_follow_the_language(tmp_path):
    _write_lang(tmp_path, "en", {"language.toml": 'decimal = "."\ngroup = ","\n', "s.toml": 't = "{n:,} of {p:.1%}"\n'})
    _write_lang(tmp_path, "vi", {"language.toml": 'decimal = ","\ngroup = "."\n', "s.toml": 't = "{n:,} trên {p:.1%}"\n'})
    i18n.set_language("vi", tmp_path)
    assert i18n.tr("s.t", n=10000, p=0.125) == "10.000 trên 12,5%"


@pytest.mark.parametrize("content, names", [
    ('x = 5\n', ("a.toml", "a.x")),                        # not a text
    ('x = "{0}"\n', ("a.toml", "a.x")),                    # a positional field: translations could not reorder it
    ('x = "{n"\n', ("a.toml", "a.x")),                     # a broken field
    ('[t]\n"bad key" = "x"\n', ("a.toml", "a.t.bad key")),
    ('x = "unterminated\n', ("a.toml",)),                  # TOML's own error, with the file named
    ("[a]" * 20 + "\n", ("a.toml",)),
    ("[" + "b." * 12 + "c]\nx = 'y'\n", ("a.toml",)),
])
def test_a_bad_language_file_is_one_line_naming_the_file_and_key(tmp_path, content, names):
    path = tmp_path / "a.toml"
    write_atomic(path, content)
    with pytest.raises(i18n.LanguageError) as caught:
        i18n.read_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert all(name in message for name in names), message


def test_a_language_file_is_bounded_before_it_is_parsed(tmp_path):
    path = tmp_path / "big.toml"
    write_atomic(path, "x = '" + "a" * (i18n.MAX_FILE_BYTES + 10) + "'\n")
    with pytest.raises(i18n.LanguageError, match="big.toml.*bytes"):
        i18n.read_file(path)
    not_utf8 = tmp_path / "bin.toml"
    write_atomic(not_utf8, b"x = '\xff'\n")
    with pytest.raises(i18n.LanguageError, match="bin.toml.*UTF-8"):
        i18n.read_file(not_utf8)


def test_an_unknown_language_names_the_known_ones():
    with pytest.raises(i18n.LanguageError, match="en, vi"):
        i18n.set_language("zz")
    with pytest.raises(i18n.LanguageError, match="not a language code"):
        i18n.set_language("../etc")


def test_the_lang_option_is_taken_from_anywhere_on_the_line():
    from llmviz.scenes.cli.main import take_lang

    assert take_lang(["render", "--scene", "x", "--lang", "vi", "--out", "a.png"]) == (
        ["render", "--scene", "x", "--out", "a.png"], "vi")
    assert take_lang(["--lang=vi", "chapters"]) == (["chapters"], "vi")
    assert take_lang(["chapters"]) == (["chapters"], None)


def test_a_bad_lang_is_one_error_line(capsys):
    from llmviz.scenes.cli.main import main

    assert main(["models", "--lang", "zz"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--lang" in err and "zz" in err and "vi" in err
    assert main(["models", "--lang"]) == 2


def test_the_menus_choice_is_remembered_in_the_config_folder(tmp_path, monkeypatch):
    from llmviz.scenes import language

    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    assert language.remembered_language() is None
    language.choose_in_menu("vi")
    assert i18n.language() == "vi"
    assert json.loads((tmp_path / "language.json").read_text()) == {"language": "vi"}
    i18n.set_language("en")
    assert language.apply_language(None, remembered=True) == "vi"
    assert language.apply_language(None, remembered=False) == "en"   # headless commands: English unless told
    assert language.apply_language("en", remembered=True) == "en"    # --lang wins
    write_atomic(tmp_path / "language.json", '{"language": "zz"}')
    assert language.remembered_language() is None                   # a language we no longer have: ignored
    write_atomic(tmp_path / "language.json", "x" * 10000)
    assert language.remembered_language() is None
    assert [code for code, _ in language.language_choices()][:2] == ["en", "vi"]


def test_check_lang_lists_what_a_language_lacks(tmp_path, monkeypatch, capsys):
    from llmviz.scenes.cli.main import main

    _write_lang(tmp_path, "en", {"language.toml": 'name = "English"\n', "menu.toml": '[file]\nopen = "Open {name}"\nquit = "Quit"\n'})
    _write_lang(tmp_path, "xx", {"language.toml": 'name = "X"\n', "menu.toml": '[file]\nopen = "Auf {path}"\n'})
    monkeypatch.setattr(i18n, "bundled_root", lambda: tmp_path)
    assert main(["chapters", "--check-lang", "xx"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "xx: missing 'menu.file.quit' (English shown)" in out
    assert any("menu.file.open" in line and "{path}" in line and "{name}" in line for line in out)
    assert main(["chapters", "--check-lang", "../x"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "../x" in err


def test_view_language_lists_every_language_by_its_own_name_and_the_menus_follow_the_choice(monkeypatch, tmp_path):
    from test_structure_readability import _MenuImgui

    from llmviz.scenes import language, panels

    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    fake = _MenuImgui("Tiếng Việt")
    monkeypatch.setattr(panels, "imgui", fake)
    choice = panels.main_menu([], "nano-gpt", ["overview"], False, "fly", panels.MenuState())
    assert choice.language == "vi"
    items = [label for kind, label in fake.items if kind == "item"]
    assert "English" in items and "Tiếng Việt" in items
    language.choose_in_menu(choice.language)          # what the window does with the choice
    again = _MenuImgui("")
    monkeypatch.setattr(panels, "imgui", again)
    panels.main_menu([], "nano-gpt", ["overview"], False, "fly", panels.MenuState())
    menus = [label.split("###")[0] for kind, label in again.items if kind == "menu"]
    vietnamese = i18n.load("vi").texts
    assert vietnamese["menu.view.language"] in menus and vietnamese["menu.model.title"] in menus
    assert "View" not in menus
    assert language.remembered_language() == "vi"


@pytest.fixture
def small_renderer():
    from gl_support import headless_or_skip

    yield from headless_or_skip((640, 360))


def test_the_window_switches_language_from_the_menu_choice(small_renderer, tmp_path, monkeypatch):
    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer

    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    ex = Explorer(small_renderer, "gpt-2-small", bindings=load_bindings(), adaptive_quality=False,
                  background_imports=False)
    try:
        english = (ex._hints(), ex.session.params)
        ex.choose_language("vi").join(30)
        vietnamese = i18n.load("vi").texts
        mode = vietnamese["hints.fly"] if ex.session.rig.mode == "fly" else vietnamese["hints.orbit"]
        assert ex._hints().startswith(mode) and ex._hints() != english[0]
        assert ex.session.params != english[1] and "tham số" in ex.session.params
        assert ex.session.status == vietnamese["hover.structure_only"]   # gpt-2-small has no weights here
        assert vietnamese["language.name"] in ex.notice
        ex.frame(1 / 60)   # the panels draw in Vietnamese without an error
    finally:
        ex.close()


def test_a_remembered_language_whose_files_went_bad_opens_in_english(tmp_path, monkeypatch, capsys):
    from llmviz.scenes import language

    _write_lang(tmp_path, "en", {"language.toml": 'name = "English"\n', "a.toml": 'x = "X"\n'})
    _write_lang(tmp_path, "xx", {"language.toml": 'name = "X"\n', "a.toml": 'x = 5\n'})
    monkeypatch.setattr(i18n, "bundled_root", lambda: tmp_path)
    monkeypatch.setattr(language, "remembered_language", lambda: "xx")
    assert language.apply_language(None, remembered=True) == "en"
    err = capsys.readouterr().err
    assert "a.toml" in err and "a.x" in err and "English" in err
    with pytest.raises(i18n.LanguageError, match="a.toml"):
        language.apply_language("xx")                # asked for by name: the error line, as --lang reports it


@pytest.mark.parametrize("code", [c for c in i18n.available() if c != "en"])
def test_every_components_role_sentence_is_translated_with_its_fields(code):
    from llmviz.scenes.component_info import role_texts

    english = list(dict.fromkeys(role_texts()))
    have = i18n.sentences(code, i18n.load(code).folder)
    assert [t for t in english if t not in have] == []
    assert [t for t in english if _fields(t) != _fields(have[t])] == []
    assert i18n.check_sentences(code, english) == []
    assert sum(have[t] != t for t in english) >= 0.9 * len(english)   # translated, not copied


def test_a_role_is_shown_in_the_chosen_language_and_its_missing_sentences_in_english(tmp_path):
    (tmp_path / "en").mkdir()
    write_atomic(tmp_path / "en" / "language.toml", 'name = "English"\n')
    (tmp_path / "xx" / "sentences").mkdir(parents=True)
    write_atomic(tmp_path / "xx" / "language.toml", 'name = "X"\n')
    write_atomic(tmp_path / "xx" / "sentences" / "roles.toml",
        '[[sentence]]\nen = "The {n} heads."\ntext = "Die {n} Köpfe."\n')
    i18n.set_language("xx", tmp_path)
    assert i18n.sentence("The {n} heads.") == "Die {n} Köpfe."
    assert i18n.sentence("Not here.") == "Not here."
    assert i18n.check_sentences("xx", ["The {n} heads.", "Not here."], tmp_path) == [
        'xx: no translation of the sentence "Not here." (English shown)']


@pytest.mark.parametrize("content, where", [
    ('[[sentence]]\nen = "A {n}."\ntext = "B {m}."\n', "sentence 1"),     # other fields than its English
    ('[[sentence]]\nen = "A."\n', "sentence 1"),                             # no translation
    ('[[sentence]]\nen = "A."\ntext = "B."\n[[sentence]]\nen = 3\ntext = "C"\n', "sentence 2"),
    ('other = "x"\n', "roles.toml"),
])
def test_a_bad_sentences_file_is_one_line_naming_the_file_and_entry(tmp_path, content, where):
    path = tmp_path / "roles.toml"
    write_atomic(path, content)
    with pytest.raises(i18n.LanguageError) as caught:
        i18n.read_sentences(path)
    assert "roles.toml" in str(caught.value) and where in str(caught.value) and "\n" not in str(caught.value)


def test_the_chapters_menu_speaks_the_language_chosen_in_the_window(small_renderer, tmp_path, monkeypatch):
    """View ▸ Language renames the Chapters menu at once (read from the language's own chapter files)."""
    import tomllib
    from pathlib import Path

    from llmviz.engine.input import load_bindings
    from llmviz.scenes.explorer import Explorer

    monkeypatch.setenv("LLMVIZ_CONFIG_DIR", str(tmp_path))
    folder = Path(__file__).resolve().parents[1] / "assets" / "chapters"
    own = [c for c in sorted(folder.iterdir()) if c.name.endswith(".toml")
           and tomllib.loads(c.read_text("utf-8")).get("model") == "nano-gpt"]
    vi_titles = [tomllib.loads((folder / "vi" / c.name).read_text("utf-8"))["title"] for c in own]
    en_titles = [tomllib.loads(c.read_text("utf-8"))["title"] for c in own]
    ex = Explorer(small_renderer, "nano-gpt", bindings=load_bindings(), adaptive_quality=False,
                  background_imports=False)
    try:
        assert [c.title for c in ex.session.chapters_mode.chapter_list] == en_titles
        mode = ex.session.chapters_mode
        mode.toggle(0, 1)   # a chapter open at its second step, playing
        mode.player.runner.playing = True
        ex.frame(1 / 60)
        before = mode.player.moment
        vi_step = tomllib.loads((folder / "vi" / own[0].name).read_text("utf-8"))["step"][1]["title"]
        assert before.step == 1 and before.title != vi_step
        ex.choose_language("vi").join(30)
        assert [c.title for c in ex.session.chapters_mode.chapter_list] == vi_titles != en_titles
        ex.frame(1 / 60)
        after = mode.player.moment   # the playing chapter speaks it too, at the same step, still playing
        assert (after.chapter, after.step) == (before.chapter, before.step) and after.t >= before.t
        assert after.title == vi_step and mode.player.runner.playing
    finally:
        ex.close()
