"""A budget that holds: what this kernel's Pi spent, the limits, a turn refused at the limit
and a turn stopped when it crosses it, by cost and by tokens, from the notebook and from a
deployment's environment (real kernels, the real Pi, the scripted LLM)."""

from __future__ import annotations

import re

import pytest

from pi_kernel import variables
from pi_kernel.rpc.usage import UsageTally
from pi_kernel.transcript import NoticePart, transcripts_in
from pi_magics import budget
from pi_magics.budget import Limits, Spending
from tests.support import scripted_llm as script
from tests.support.kernels import KernelHarness, running_kernel, short_failure
from tests.support.pi_env import PiEnv, add_priced_model
from tests.support.scripted_llm import ScriptedLLM


def spent_tokens(kernel: KernelHarness) -> int:
    line = kernel.execute("%pi budget").text()
    match = re.search(r"and ([\d,]+) tokens spent", line)
    assert match, line
    return int(match.group(1).replace(",", ""))


def test_at_the_token_limit_a_new_turn_is_refused_in_one_line(
    kernel: KernelHarness, llm: ScriptedLLM
):
    llm.enqueue(script.text("First."))
    assert kernel.execute("%%pi\nHello").status == "ok"
    spent = spent_tokens(kernel)
    assert spent > 500
    assert "no limit" in kernel.execute("%pi budget").text()
    assert (
        kernel.execute("%pi budget 0.5k tokens")
        .text()
        .endswith("limits: none in dollars, 500 tokens\n")
    )
    refused = short_failure(kernel.execute("%%pi\nAgain"), lines=1)
    assert f"Pi's budget for this kernel is spent ({spent:,} of 500 tokens)" in refused
    assert "%pi budget off" in refused
    assert len(llm.requests) == 1  # nothing was sent
    status = kernel.execute("%pi status").text()
    assert (
        f"Budget:    $0.0000 and {spent:,} tokens spent; limits: none in dollars, 500 tokens"
        in status
    )
    assert kernel.execute("%pi budget off").status == "ok"
    llm.enqueue(script.text("Second."))
    assert kernel.execute("%%pi\nAgain").status == "ok"


def spent_dollars(kernel: KernelHarness) -> float:
    line = kernel.execute("%pi budget").text()
    match = re.search(r"\$(\d+\.\d{4}) and", line)
    assert match, line
    return float(match.group(1))


@pytest.mark.contract
@pytest.mark.parametrize("unit", ["tokens", "dollars"])
def test_a_turn_that_crosses_the_limit_is_stopped_and_what_streamed_stays(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv, unit: str
):
    model = add_priced_model(pi_env.agent_dir) if unit == "dollars" else "scripted/plain"
    llm.enqueue(script.text("First."))
    assert kernel.execute(f"%%pi --model {model}\nHello").status == "ok"
    if unit == "tokens":  # less than one more request
        limit, reached = f"{spent_tokens(kernel) + 100} tokens", r"[\d,]+ of [\d,]+ tokens"
    else:
        limit, reached = f"${spent_dollars(kernel) + 0.05:.2f}", r"\$\d+\.\d\d of \$\d+\.\d\d"
    assert kernel.execute(f"%pi budget {limit}").status == "ok"
    llm.enqueue(
        script.tool_calls(("bash", {"command": "echo step"}), text="Working on it."),
        script.text("Never asked for."),
    )
    run = kernel.execute(f"%%pi --model {model}\nDo two steps.")
    assert run.status == "ok", run.outputs
    assert len(llm.requests) == 2  # the second step was never asked of the model
    assert "Working on it." in run.text("text/markdown")
    shown = run.text()
    assert re.search(f"Stopped: this turn took Pi's spending to {reached}, the budget", shown)
    assert "step\n" not in shown  # the crossing message's tool did not run
    (record,) = transcripts_in(run.outputs)
    assert record.status == "aborted"
    notices = [part.text for part in record.blocks if isinstance(part, NoticePart)]
    assert any(text.startswith("Stopped: this turn took") for text in notices)
    footer = run.outputs[-1]["data"]["text/plain"]
    assert "aborted" in footer
    assert re.search(f"budget {reached}", footer), footer
    refused = short_failure(kernel.execute(f"%%pi --model {model}\nAnd now?"), lines=1)
    assert "Pi's budget for this kernel is spent" in refused


def test_a_dollar_budget_shows_in_the_footer_and_status_and_holds(
    kernel: KernelHarness, llm: ScriptedLLM, pi_env: PiEnv
):
    priced = add_priced_model(pi_env.agent_dir)
    assert kernel.execute("%pi budget $100").status == "ok"
    llm.enqueue(script.text("Costly."))
    run = kernel.execute(f"%%pi --model {priced}\nHello")
    assert run.status == "ok", run.outputs
    footer = run.outputs[-1]["data"]["text/plain"]
    match = re.search(r"budget \$(\d+\.\d\d) of \$100\.00", footer)
    assert match, footer
    assert float(match.group(1)) > 0.5
    status = kernel.execute("%pi status").text()
    assert re.search(r"Budget:    \$\d+\.\d{4} and [\d,]+ tokens spent; limits: \$100\.00", status)
    assert kernel.execute("%pi budget $0.50").status == "ok"
    refused = short_failure(kernel.execute(f"%%pi --model {priced}\nAgain"), lines=1)
    assert re.search(r"spent \(\$\d+\.\d\d of \$0\.50\)", refused), refused
    assert len(llm.requests) == 1


def test_a_deployment_sets_the_budget_in_the_environment(pi_env: PiEnv, llm: ScriptedLLM):
    env = {**pi_env.env, variables.BUDGET_USD: "0", variables.BUDGET_TOKENS: "500k"}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        line = kernel.execute("%pi budget").text()
        assert "limits: $0.00, 500,000 tokens" in line
        refused = short_failure(kernel.execute("%%pi\nHello"), lines=1)
        assert "Pi's budget for this kernel is spent ($0.00 of $0.00)" in refused
        assert kernel.execute("%config PiMagics.budget_usd = None").status == "ok"
        llm.enqueue(script.text("Within the token budget."))
        assert kernel.execute("%%pi\nHello").status == "ok"
    assert len(llm.requests) == 1


def test_an_unreadable_budget_in_the_environment_stops_turns_until_one_is_set(
    pi_env: PiEnv, llm: ScriptedLLM
):
    env = {**pi_env.env, variables.BUDGET_TOKENS: "lots"}
    with running_kernel(env=env, cwd=pi_env.cwd) as kernel:
        assert kernel.execute("%load_ext pi_magics").status == "ok"
        refused = short_failure(kernel.execute("%%pi\nHello"), lines=1)
        assert f"{variables.BUDGET_TOKENS} in this kernel's environment is unusable" in refused
        assert "'lots' is not a number of tokens" in refused
        assert kernel.execute("%pi budget 200k tokens").status == "ok"
        llm.enqueue(script.text("Now it runs."))
        assert kernel.execute("%%pi\nHello").status == "ok"


# -- without a kernel -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "limits"),
    [
        (["$0.50"], Limits(0.5, 7)),
        (["200k", "tokens"], Limits(1.0, 200_000)),
        (["1.5m", "tokens"], Limits(1.0, 1_500_000)),
        (["OFF"], Limits()),
    ],
)
def test_a_budget_is_set_in_dollars_tokens_or_off(words: list[str], limits: Limits):
    assert budget.changed(Limits(1.0, 7), words) == limits


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["200k"], "'200k' is not a budget: give %pi budget $1.00"),
        (["$cheap"], "'$cheap' is not an amount in dollars"),
        (["lots", "tokens"], "'lots' is not a number of tokens"),
    ],
)
def test_a_budget_that_is_not_one_is_said_in_one_sentence(words: list[str], message: str):
    with pytest.raises(ValueError, match=re.escape(message)):
        budget.changed(Limits(), words)


def test_spending_follows_the_sessions_usage_between_turns():
    spending = Spending()
    spending.add_turn(UsageTally(1, 100, 10, 0, 0, 0.25))
    spending.follow(UsageTally(2, 0, 0, 50, 0, 0.01))
    spending.follow(UsageTally(3, 0, 0, 80, 0, 0.02))  # further on
    spending.follow(UsageTally(3, 0, 0, 80, 0, 0.02))  # nothing new
    spending.follow(UsageTally(4, 0, 0, 85, 0, 0.021))  # a new Pi's, after the last one's
    total = spending.total
    assert (total.tokens, round(total.cost, 3)) == (195, 0.271)
    assert budget.over(Limits(tokens=195), total) == "195 of 195 tokens"
    assert budget.over(Limits(0.3, 196), total) is None
    assert budget.footer_part(Limits(0.3, 1_000), total) == "$0.27 of $0.30 · 195 of 1,000 tokens"
