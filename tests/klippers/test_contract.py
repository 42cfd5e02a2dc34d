"""The warehouse contract: exact key layout, ID safety and ``shorts_config.json`` validation."""

from __future__ import annotations

import json

import pytest

from klippers import contract
from klippers.contract import ContractError, ShortsConfig, VideoRef

PREFIX = "klippers_warehouse/alice/talk-1/"


@pytest.fixture
def ref() -> VideoRef:
    return VideoRef("alice", "talk-1")


def test_every_key_matches_the_seed_layout(ref: VideoRef) -> None:
    assert ref.prefix == PREFIX
    assert ref.original_video == PREFIX + "original.mp4"
    assert ref.shorts_config == PREFIX + "shorts_config.json"
    assert ref.thumbnail == PREFIX + "thumbnail.png"
    assert ref.original_srt == PREFIX + "original.srt"
    assert ref.original_txt == PREFIX + "original.txt"
    assert ref.original_words == PREFIX + "original.words.json"
    assert ref.manifest == PREFIX + "important_segments_videos.json"
    assert ref.segment_video(3) == PREFIX + "important-segment-videos/segment_3.mp4"
    assert ref.segment_srt(3) == PREFIX + "important-segment-videos/segment_3.srt"
    assert ref.segment_words(3) == PREFIX + "important-segment-videos/segment_3.words.json"
    assert ref.short_video(3) == PREFIX + "videos-cropped-stacked/segment_3_cropped_stacked.mp4"


def test_name_functions_and_constants() -> None:
    assert contract.WAREHOUSE_ROOT == "klippers_warehouse"
    assert contract.MANIFEST == "important_segments_videos.json"
    assert contract.SEGMENTS_DIR == "important-segment-videos"
    assert contract.SHORTS_DIR == "videos-cropped-stacked"
    assert contract.segment_video_name(3) == "segment_3.mp4"
    assert contract.segment_srt_name(12) == "segment_12.srt"
    assert contract.segment_words_name(1) == "segment_1.words.json"
    assert contract.short_video_name(3) == "segment_3_cropped_stacked.mp4"
    assert (contract.ENV_USER_ID, contract.ENV_VIDEO_ID, contract.ENV_SEGMENT) == (
        "USER_ID",
        "VIDEO_ID",
        "SEGMENT",
    )
    assert contract.ENV_BUCKET == "VIDEO_WAREHOUSE_S3_BUCKET_NAME"


def test_all_keys_lists_a_finished_run_with_the_manifest_after_the_segments(
    ref: VideoRef,
) -> None:
    keys = ref.all_keys(2)
    assert len(keys) == len(set(keys)) == 3 + 3 + 2 * 3 + 1 + 2
    parent = ref.parent_keys(2)
    assert parent[-1] == ref.manifest
    assert ref.segment_words(2) in parent
    assert ref.child_keys(2) == (ref.short_video(1), ref.short_video(2))
    assert ref.child_keys(0) == ()
    assert all(k.startswith(PREFIX) for k in keys)


@pytest.mark.parametrize("n", [0, -1, 51, True, 2.0, "3"])
def test_bad_segment_numbers_are_refused(n: object) -> None:
    with pytest.raises(ContractError, match="segment"):
        contract.segment_video_name(n)  # type: ignore[arg-type]


def test_segment_env_value_is_parsed_or_named() -> None:
    assert contract.parse_segment(" 7\n") == 7
    for bad in ("", "x", "-1", "0", "51", "1.5"):
        with pytest.raises(ContractError, match=r"^SEGMENT:"):
            contract.parse_segment(bad)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "must not be empty"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("..", r"'\.\.'"),
        ("x..y", r"'\.\.'"),
        ("bad\nid", "control characters"),
        ("tab\tid", "control characters"),
        ("x" * 129, "at most 128"),
        ("with space", "may only contain"),
        ("café", "may only contain"),
        (42, "must be a string"),
    ],
)
def test_unsafe_ids_are_refused_naming_the_field(value: object, problem: str) -> None:
    with pytest.raises(ContractError, match=f"^video_id: .*{problem}"):
        VideoRef("alice", value)  # type: ignore[arg-type]
    with pytest.raises(ContractError, match=f"^user_id: .*{problem}"):
        VideoRef(value, "v")  # type: ignore[arg-type]


def test_ids_of_common_shapes_are_accepted() -> None:
    ref = VideoRef("user@example.com", "3f2a9c1e-0b7d-4e4b-9a53-6c0d.v2")
    assert ref.prefix == "klippers_warehouse/user@example.com/3f2a9c1e-0b7d-4e4b-9a53-6c0d.v2/"
    assert VideoRef("x" * 128, "v").user_id == "x" * 128


def test_video_ref_is_frozen_and_hashable(ref: VideoRef) -> None:
    with pytest.raises(AttributeError):
        ref.user_id = "mallory"  # type: ignore[misc]
    assert {ref, VideoRef("alice", "talk-1")} == {ref}


def test_from_env_names_the_missing_or_bad_variable() -> None:
    assert VideoRef.from_env({"USER_ID": "u", "VIDEO_ID": "v"}) == VideoRef("u", "v")
    with pytest.raises(ContractError, match=r"^VIDEO_ID: environment variable is not set"):
        VideoRef.from_env({"USER_ID": "u"})
    with pytest.raises(ContractError, match=r"^USER_ID: must not contain '\.\.'"):
        VideoRef.from_env({"USER_ID": "..", "VIDEO_ID": "v"})
    assert VideoRef("u", "v").env() == {"USER_ID": "u", "VIDEO_ID": "v"}


@pytest.mark.parametrize("relative", ["", "../x", "a//b", "./a", "/abs", "a/\x00"])
def test_key_refuses_paths_leaving_the_video_folder(ref: VideoRef, relative: str) -> None:
    with pytest.raises(ContractError, match=r"^key:"):
        ref.key(relative)


# --- shorts_config.json ----------------------------------------------------------------------


def test_minimal_config_gets_defaults() -> None:
    config = ShortsConfig.from_json('{"segment_count": 3}')
    assert config.segment_count == 3
    assert config.target_short_video_duration_in_seconds == 60
    assert config.layout == "stacked"
    assert config.language is None
    assert config.caption_style is None


def test_full_config_round_trips_with_unknown_fields(ref: VideoRef) -> None:
    doc = {
        "segment_count": 5,
        "target_short_video_duration_in_seconds": 45.5,
        "user_id": "alice",
        "video_id": "talk-1",
        "min_duration": 20,
        "max_duration": 90,
        "background_video": "backgrounds/minecraft.mp4",
        "layout": "blurred",
        "reframe": "center",
        "scorer": "llm",
        "caption_style": {"font_size": 72, "colors": ["#fff", "#ff0"]},
        "language": "en-US",
        "asr_backend": "faster-whisper",
        "seed_field": {"keep": [1, 2]},
        "title": "My talk",
    }
    config = ShortsConfig.from_json(json.dumps(doc), ref=ref)
    assert config.layout == "blurred"
    assert config.reframe == "center"
    assert config.scorer == "llm"
    assert config.caption_style == {"font_size": 72, "colors": ("#fff", "#ff0")}
    assert json.loads(config.to_json()) == doc
    assert config.to_json().endswith("}\n")
    assert ShortsConfig.from_json(config.to_json()) == config


def test_config_is_immutable_including_nested_values() -> None:
    config = ShortsConfig.from_dict(
        {"segment_count": 1, "caption_style": {"a": {"b": 1}}, "x": [1]}
    )
    with pytest.raises(AttributeError):
        config.segment_count = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.caption_style["a"]["b"] = 2  # type: ignore[index]
    with pytest.raises(TypeError):
        config.extras["x"] = 3  # type: ignore[index]
    hash(config)


def test_with_segment_count_keeps_everything_else() -> None:
    config = ShortsConfig.from_dict({"segment_count": 0, "layout": "full", "extra": True})
    chosen = config.with_segment_count(4)
    assert (chosen.segment_count, chosen.layout, chosen.extras) == (4, "full", {"extra": True})
    assert config.segment_count == 0
    with pytest.raises(ContractError, match="segment_count"):
        config.with_segment_count(10_000)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({}, "segment_count: is required"),
        ({"segment_count": None}, "segment_count: is required"),
        ({"segment_count": 10_000}, "segment_count: must be from 0"),
        ({"segment_count": -1}, "segment_count: must be from 0"),
        ({"segment_count": 51}, "segment_count: must be from 0"),
        ({"segment_count": "3"}, "segment_count: must be an integer"),
        ({"segment_count": 2.0}, "segment_count: must be an integer"),
        ({"segment_count": True}, "segment_count: must be an integer"),
        ({"segment_count": 1, "target_short_video_duration_in_seconds": 0}, "target_short"),
        ({"segment_count": 1, "target_short_video_duration_in_seconds": 3600}, "target_short"),
        ({"segment_count": 1, "target_short_video_duration_in_seconds": "60"}, "target_short"),
        ({"segment_count": 1, "target_short_video_duration_in_seconds": float("nan")}, "target"),
        ({"segment_count": 1, "min_duration": 2}, "min_duration"),
        ({"segment_count": 1, "max_duration": 1000}, "max_duration"),
        ({"segment_count": 1, "min_duration": 50, "max_duration": 30}, "min_duration"),
        ({"segment_count": 1, "max_duration": 30}, "target_short_video_duration_in_seconds"),
        ({"segment_count": 1, "user_id": "a/b"}, "user_id"),
        ({"segment_count": 1, "video_id": ""}, "video_id"),
        ({"segment_count": 1, "layout": "sideways"}, "layout: must be one of stacked"),
        ({"segment_count": 1, "reframe": "wobbly"}, "reframe: must be one of speaker, face"),
        ({"segment_count": 1, "scorer": "gpt"}, "scorer: must be one of embedded, llm"),
        ({"segment_count": 1, "caption_style": "big"}, "caption_style"),
        ({"segment_count": 1, "language": "English"}, "language"),
        ({"segment_count": 1, "asr_backend": "Whisper Large"}, "asr_backend"),
        ({"segment_count": 1, "background_video": ""}, "background_video"),
        ({"segment_count": 1, "background_video": "../../etc/passwd"}, "background_video"),
    ],
)
def test_invalid_config_names_the_bad_field(doc: dict[str, object], field: str) -> None:
    with pytest.raises(ContractError, match=f"^shorts_config.json: {field}"):
        ShortsConfig.from_dict(doc)


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '"x"', b"\xff\xfe"])
def test_malformed_json_is_a_contract_error(text: str | bytes) -> None:
    with pytest.raises(ContractError, match=r"^shorts_config.json: "):
        ShortsConfig.from_json(text)


def test_ids_in_config_must_match_the_location(ref: VideoRef) -> None:
    ShortsConfig.from_dict({"segment_count": 1, "user_id": "alice"}, ref=ref)
    with pytest.raises(ContractError, match="video_id: does not match the warehouse folder"):
        ShortsConfig.from_dict({"segment_count": 1, "video_id": "other"}, ref=ref)
    with pytest.raises(ContractError, match="user_id: does not match"):
        ShortsConfig.from_dict({"segment_count": 1, "user_id": "bob"}).check_location(ref)


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ContractError, match="layout"):
        ShortsConfig(segment_count=1, layout="wide")  # type: ignore[arg-type]
    with pytest.raises(ContractError, match="extras"):
        ShortsConfig(segment_count=1, extras={"layout": "full"})


def test_video_id_from_a_file_name() -> None:
    from klippers.contract import video_id_for

    assert video_id_for("My Talk (2024) final.MP4") == "my-talk-2024-final"
    assert video_id_for("/videos/talk-v1.mp4") == "talk-v1"
    with pytest.raises(ContractError, match="cannot make a video ID"):
        video_id_for("???.mp4")
