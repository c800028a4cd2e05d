"""velora_tui.tui.filtering: the `/` filter language of the experiment list."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from velora_tui.data.config import flatten
from velora_tui.data.records import ExperimentSummary, RunStatus
from velora_tui.data.slurm import Job, JobTie
from velora_tui.tui.filtering import FIELDS, FilterError, Query, parse_query

NOW = datetime(2025, 6, 1, 12, 0, 0)
CONFIG = flatten(
    {
        "agent": "NeuroFlow",
        "env": "CartPole-v1",
        "seed": 64,
        "model_details": {"gamma": 0.99, "target_networks": True, "log_std": None, "tau": "0.005"},
        "train_params": {"batch_size": 64, "n_episodes": 120, "callbacks": None},
        "buffer": {"capacity": 1000000, "type": "ReplayBuffer", "sizes": [8, 16]},
        "weird": {"nan": math.nan, "inf": math.inf, "empty": {}},
    }
)


def make_summary(
    exp_id: int = 1,
    agent: str = "NeuroFlow",
    env: str = "CartPole-v1",
    status: RunStatus = RunStatus.RUNNING,
    db: str = "/runs/lab/metrics.db",
    **values: Any,
) -> ExperimentSummary:
    """A summary in the given status (built directly, as the data layer would fill it)."""
    summary = ExperimentSummary(Path(db), exp_id, agent, env, NOW - timedelta(hours=2))
    if status is not RunStatus.EMPTY:
        summary.episodes = 50
        summary.last_episode_num = 50
        summary.last_reward = 120.0
        summary.best_reward = 200.0
        summary.reward_moving_avg = 95.5
        summary.first_activity = NOW - timedelta(minutes=10)
        summary.last_activity = NOW - timedelta(seconds=2)
        summary.n_episodes = 500
    if status is RunStatus.FINISHED:
        summary.n_episodes = 50
    if status is RunStatus.STALLED:
        summary.last_activity = NOW - timedelta(hours=1)
    if status is RunStatus.ENDED:  # its Slurm job is over
        summary.job = JobTie((Job("7", "TIMEOUT"),))
    for name, value in values.items():
        setattr(summary, name, value)
    assert summary.status(NOW) is status
    return summary


def check(text: str, summary: ExperimentSummary, config: dict[str, Any] | None = None) -> bool:
    return parse_query(text).matches(summary, NOW, config)


# -- plain words ---------------------------------------------------------------------------------


def test_empty_query_matches_everything() -> None:
    query = parse_query("   ")
    assert query == Query()
    assert query.is_empty
    assert not query.needs_config
    assert query.matches(make_summary(status=RunStatus.EMPTY), NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("neuro", True),
        ("NEUROFLOW", True),
        ("cartpole", True),
        ("#7", True),
        ("7", True),
        ("lab", True),
        ("metrics.db", True),
        ("neuro cart", True),
        ("neuro pendulum", False),
        ("#8", False),
        ("pendulum", False),
    ],
)
def test_plain_words(text: str, expected: bool) -> None:
    summary = make_summary(exp_id=7)
    assert check(text, summary) is expected


def test_plain_words_ignore_case_and_spaces() -> None:
    summary = make_summary(exp_id=3)
    now = datetime.now()
    assert parse_query("").matches(summary, now)
    assert parse_query("  NEURO  #3 ").matches(summary, now)
    assert not parse_query("neuro lunar").matches(summary, now)


# -- text fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("agent:neuro", True),
        ("agent:FLOWCT", True),
        ("agent:cart", False),
        ("env:cart", True),
        ("env:pole-v1", True),
        ("env:lunar", False),
        ("agent=neuroflowct", True),
        ("agent=neuro", False),
        ("agent!=neuro", True),
        ("agent!=NeuroFlowCT", False),
        ('env:"cart pole"', False),
        ("Agent:neuro", True),
    ],
)
def test_agent_and_env(text: str, expected: bool) -> None:
    assert check(text, make_summary(agent="NeuroFlowCT", env="CartPole-v1")) is expected


def test_quoted_values_hold_spaces() -> None:
    summary = make_summary(agent="Neuro Flow", env="My Env v2")
    assert check('agent:"neuro flow" env:"my env"', summary)
    assert not check('agent:"neuro flow" env:"other env"', summary)
    assert len(parse_query("agent:neuro flow").terms) == 2  # unquoted: two terms


# -- id and status -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id:3", True),
        ("id=3", True),
        ("id:33", False),
        ("id!=3", False),
        ("id>2", True),
        ("id>=3", True),
        ("id<3", False),
        ("id<=3", True),
        ("id:3.0", True),
    ],
)
def test_id(text: str, expected: bool) -> None:
    assert check(text, make_summary(exp_id=3)) is expected


def test_id_is_exact_where_a_word_is_a_substring() -> None:
    summary = make_summary(exp_id=33)
    assert check("3", summary)
    assert not check("id:3", summary)


@pytest.mark.parametrize("status", list(RunStatus))
def test_status(status: RunStatus) -> None:
    summary = make_summary(status=status)
    for other in RunStatus:
        assert check(f"status:{other}", summary) is (other is status)
        assert check(f"status={other.value.upper()}", summary) is (other is status)
        assert check(f"status!={other}", summary) is (other is not status)


def test_status_never_raises_on_an_unusable_now() -> None:
    query = parse_query("status:running")
    aware = datetime(2025, 6, 1, tzinfo=datetime.now().astimezone().tzinfo)
    assert not query.matches(make_summary(), aware)


# -- numbers -------------------------------------------------------------------------------------

NUMBER_CASES = [
    ("reward>100", True),
    ("reward>120", False),
    ("reward>=120", True),
    ("reward<120.5", True),
    ("reward<=119", False),
    ("reward=120", True),
    ("reward:120", True),
    ("reward!=120", False),
    ("best>=200", True),
    ("best>200", False),
    ("avg>95", True),
    ("avg<95", False),
    ("episodes=50", True),
    ("episodes>=51", False),
    ("episodes<1e3", True),
    ("reward>-inf", True),
    ("reward<inf", True),
    ("REWARD>100", True),
]


@pytest.mark.parametrize(("text", "expected"), NUMBER_CASES)
def test_numeric_comparisons(text: str, expected: bool) -> None:
    assert check(text, make_summary()) is expected


@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "=", "!="])
@pytest.mark.parametrize("field", ["reward", "best", "avg"])
def test_nan_never_satisfies_a_comparison(field: str, op: str) -> None:
    empty = make_summary(status=RunStatus.EMPTY)  # every reward is NaN
    assert not check(f"{field}{op}0", empty)
    nan_reward = make_summary(
        last_reward=math.nan, best_reward=math.nan, reward_moving_avg=math.nan
    )
    assert not check(f"{field}{op}0", nan_reward)


def test_infinite_rewards_compare() -> None:
    summary = make_summary(last_reward=math.inf)
    assert check("reward>1e300", summary)
    assert check("reward=inf", summary)
    assert not check("reward<0", summary)


# -- config --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cfg.train_params.batch_size=64", True),
        ("cfg.train_params.batch_size=64.0", True),
        ("cfg.train_params.batch_size:64", True),
        ("cfg.train_params.batch_size=32", False),
        ("cfg.train_params.batch_size!=32", True),
        ("cfg.train_params.batch_size>=64", True),
        ("cfg.train_params.batch_size>64", False),
        ("cfg.train_params.batch_size<100", True),
        ("cfg.model_details.gamma>=0.95", True),
        ("cfg.model_details.gamma<0.95", False),
        ("cfg.buffer.capacity>=1e6", True),
        ("cfg.env=CartPole-v1", True),
        ("cfg.env=cartpole-v1", True),
        ("cfg.env=CartPole", False),
        ("cfg.env!=LunarLander-v3", True),
        ("cfg.env!=CARTPOLE-V1", False),
        ("cfg.buffer.type=replaybuffer", True),
        ("cfg.model_details.target_networks=true", True),
        ("cfg.model_details.target_networks=1", False),
        ("cfg.model_details.log_std=null", True),
        ("cfg.train_params.callbacks!=null", False),
        ("cfg.model_details.tau<0.01", True),  # numeric text compares as a number
        ("cfg.model_details.tau=0.005", True),
        ("cfg.buffer.sizes[1]=16", True),  # a list's item: [1]
        ("cfg.weird.empty={}", True),
        ("cfg.Train_Params.Batch_Size=64", True),  # keys: exact first, then ignoring case
        ('cfg.env="CartPole-v1"', True),
    ],
)
def test_config_terms(text: str, expected: bool) -> None:
    query = parse_query(text)
    assert query.needs_config
    assert query.matches(make_summary(), NOW, CONFIG) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cfg.nope=1", False),
        ("cfg.nope>1", False),
        ("cfg.nope<=1", False),
        ("cfg.nope!=1", True),
        ("cfg.train_params=64", False),  # a subtree is not a key
        ("cfg.train_params!=64", True),
    ],
)
def test_missing_config_key_only_matches_not_equal(text: str, expected: bool) -> None:
    assert check(text, make_summary(), CONFIG) is expected
    assert check(text, make_summary(), {}) is expected


def test_config_not_available() -> None:
    summary = make_summary()
    assert not check("cfg.train_params.batch_size=64", summary, None)
    assert check("cfg.train_params.batch_size!=64", summary, None)
    assert not parse_query("cfg.seed>1").matches(summary, NOW)  # config defaults to None


def test_text_config_values_do_not_order() -> None:
    assert not check("cfg.env>5", make_summary(), CONFIG)
    assert not check("cfg.env<5", make_summary(), CONFIG)


@pytest.mark.parametrize("op", [">", ">=", "<", "<=", "=", "!="])
def test_nan_in_config_never_satisfies(op: str) -> None:
    assert not check(f"cfg.weird.nan{op}1", make_summary(), CONFIG)


def test_infinite_config_value_compares() -> None:
    assert check("cfg.weird.inf>1e308", make_summary(), CONFIG)


# -- combinations --------------------------------------------------------------------------------


def test_all_terms_must_match() -> None:
    good = make_summary(exp_id=4, agent="NeuroFlowCT", env="Pendulum-v1")
    text = "agent:ct env:pendulum status:running reward>=100 cfg.train_params.batch_size=64 neuro"
    query = parse_query(text)
    assert len(query.terms) == 6
    assert query.needs_config
    assert query.matches(good, NOW, CONFIG)
    assert not query.matches(good, NOW, {**CONFIG, "train_params.batch_size": 32})
    assert not query.matches(make_summary(exp_id=4, agent="NeuroFlow"), NOW, CONFIG)
    assert not query.matches(make_summary(status=RunStatus.STALLED), NOW, CONFIG)
    assert not query.matches(good, NOW, None)


def test_filtering_a_list() -> None:
    summaries = [
        make_summary(1, "NeuroFlow", "CartPole-v1", RunStatus.FINISHED),
        make_summary(2, "NeuroFlowCT", "Pendulum-v1", RunStatus.RUNNING, last_reward=-300.0),
        make_summary(3, "NeuroFlow", "LunarLander-v3", RunStatus.STALLED),
        make_summary(4, "NeuroFlowCT", "InvertedPendulum-v5", RunStatus.EMPTY),
    ]
    configs = {1: {"seed": 1}, 2: {"seed": 2}, 3: {"seed": 3}, 4: {}}

    def ids(text: str) -> list[int]:
        query = parse_query(text)
        return [s.id for s in summaries if query.matches(s, NOW, configs[s.id])]

    assert ids("") == [1, 2, 3, 4]
    assert ids("pendulum") == [2, 4]
    assert ids("agent=neuroflow") == [1, 3]
    assert ids("status!=empty reward<0") == [2]
    assert ids("status:finished") == [1]
    assert ids("id>=2 id<4") == [2, 3]
    assert ids("episodes>0 cfg.seed>=2") == [2, 3]
    assert ids("cfg.seed!=2") == [1, 3, 4]


# -- errors --------------------------------------------------------------------------------------

ALL_FIELDS = "(fields: agent, env, id, status, reward, best, avg, episodes, cfg.*)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rewrd>5", f'unknown field "rewrd" {ALL_FIELDS}'),
        ("neuro agnt:x", f'unknown field "agnt" {ALL_FIELDS}'),
        ("status:done", "status must be one of running, stalled, finished, empty"),
        ("status:", "status must be one of running, stalled, finished, empty"),
        ("status>running", "status takes :, = or != (not >)"),
        ("reward>", '"reward>" needs a number'),
        ("reward>abc", '"reward>" needs a number'),
        ("best<=nan", '"best<=" needs a number'),
        ("episodes:", '"episodes:" needs a number'),
        ("id:three", '"id:" needs a number'),
        ("agent:", '"agent:" needs a value'),
        ("env<3", "env takes :, = or != (not <)"),
        ("cfg.", '"cfg." needs an operator and a value, e.g. cfg.train_params.batch_size=64'),
        ("cfg.seed", '"cfg.seed" needs an operator and a value'),
        ("cfg.=3", '"cfg.=" needs a key'),
        ("cfg.seed=", '"cfg.seed=" needs a value'),
        ("cfg.env>abc", '"cfg.env>" needs a number'),
        ('agent:"neuro', 'a " quote is not closed'),
        ("neuro\\", "a \\ at the end escapes nothing"),
    ],
)
def test_bad_terms_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_query(text)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert len(str(info.value)) < 120
    assert isinstance(info.value, ValueError)


def test_error_messages_are_clean() -> None:
    with pytest.raises(FilterError) as info:
        parse_query("cfg.a\x1b[31mb\x07>x")
    assert "\x1b" not in str(info.value)
    assert "\x07" not in str(info.value)
    assert "needs a number" in str(info.value)


def test_apostrophes_are_plain_characters() -> None:
    assert check("o'neil", make_summary(agent="O'Neil"))


# -- whatever the input ----------------------------------------------------------------------------

SUMMARIES = [make_summary(1, status=status) for status in RunStatus] + [
    make_summary(2, "\x1b[1m", "", last_reward=math.inf, best_reward=-math.inf),
]
FRAGMENTS = st.sampled_from(
    [
        *FIELDS,
        "cfg.",
        "cfg.seed",
        "cfg.train_params.batch_size",
        "Reward",
        ">",
        ">=",
        "<",
        "<=",
        "=",
        "!=",
        "!",
        ":",
        '"',
        "\\",
        " ",
        "nan",
        "inf",
        "-1e999",
        "64",
        "0.5",
        "running",
        "#",
        ".",
        "\x00",
        "\u00e9",
    ]
)
JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
CONFIGS: st.SearchStrategy[dict[str, Any]] = st.dictionaries(
    st.text(max_size=12), JSON_LEAVES | st.just({}) | st.just([])
)


def _never_raises(text: str, config: dict[str, Any] | None) -> None:
    try:
        query = parse_query(text)
    except FilterError as exc:
        message = str(exc)
    else:
        for summary in SUMMARIES:
            assert isinstance(query.matches(summary, NOW, config), bool)
        return
    assert message
    assert "\n" not in message


@settings(max_examples=300, deadline=None)
@given(st.text(), st.none() | CONFIGS)
def test_arbitrary_text_never_raises_anything_else(
    text: str, config: dict[str, Any] | None
) -> None:
    _never_raises(text, config)


@settings(max_examples=300, deadline=None)
@given(st.lists(FRAGMENTS, max_size=12).map("".join), st.none() | CONFIGS)
def test_term_like_text_never_raises_anything_else(
    text: str, config: dict[str, Any] | None
) -> None:
    _never_raises(text, config)


@settings(deadline=None)
@given(st.text(max_size=12), JSON_LEAVES, st.sampled_from([">", ">=", "<", "<=", "=", "!="]))
def test_config_values_of_any_kind_never_raise(key: str, value: Any, op: str) -> None:
    name = key.replace(" ", "_").replace('"', "_").replace("\\", "_") or "k"
    try:
        query = parse_query(f"cfg.{name}{op}1")
    except FilterError:
        return
    assert isinstance(query.matches(SUMMARIES[0], NOW, {name: value}), bool)


# -- group terms ---------------------------------------------------------------------------------

FIGURES = {"final": 420.0, "final_std": 12.5, "best": 500.0, "best_std": math.nan, "runs": 5}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("group.final>400", True),
        ("group.final>=420", True),
        ("group.final<400", False),
        ("GROUP.FINAL:420", True),
        ("group.runs=5 group.final_std<20", True),
        ("group.runs!=5", False),
        ("group.best_std<1", False),  # NaN never satisfies a comparison
        ("group.best_std>1", False),
        ("group.running>0", False),  # a figure not given is NaN
    ],
)
def test_group_terms_compare_a_groups_figures(text: str, expected: bool) -> None:
    assert parse_query(text).on_groups
    assert parse_query(text).matches_group(FIGURES) is expected


def test_group_terms_hold_for_every_run_and_run_terms_for_every_group() -> None:
    query = parse_query("agent:neuro group.final>1000")
    assert query.matches(make_summary(status=RunStatus.RUNNING), NOW)
    assert not query.matches_group(FIGURES)
    assert parse_query("agent:nothing").matches_group(FIGURES)
    assert not parse_query("agent:neuro").on_groups


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("group.finale>3", 'unknown group field "finale"'),
        ("group.final>high", '"group.final>" needs a number'),
        ("group.final", "needs an operator and a number"),
        ("group.final>nan", '"group.final>" needs a number'),
    ],
)
def test_bad_group_terms_say_why(text: str, said: str) -> None:
    with pytest.raises(FilterError) as info:
        parse_query(text)
    assert said in str(info.value)
