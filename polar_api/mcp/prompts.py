"""Prompts: ready-made requests a person picks in their MCP client, each telling the model which tools to
call and how to read them. They hold no data themselves: every number comes from the tools, on the current
snapshot, when the model calls them.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

PromptUser = Annotated[
    str | None,
    Field(description="the user id to review; leave empty with a user's own key or a stdio server's --user"),
]


def _whose(user_id: str | None) -> str:
    if user_id:
        return f"user {user_id} (pass user_id={user_id!r} to every tool)"
    return "me (leave user_id out: the tools answer for my own data)"


def _honesty() -> str:
    return (
        "Read the note, latest_data_day and snapshot_age_seconds of every answer: if data is missing or "
        "stale, say so plainly and do not fill gaps with guesses. Quote numbers with their units, compare "
        "them with my own baselines rather than population norms, and say when a statistic is a heuristic."
    )


def register(server: MCPServer) -> None:
    """Add the prompts to ``server``."""

    @server.prompt(
        name="weekly_review",
        title="Weekly review",
        description="A review of the last 7 days: sleep, recovery, training load, trends, anything flagged.",
    )
    def weekly_review(user_id: PromptUser = None) -> str:
        return (
            f"Give a weekly health and training review for {_whose(user_id)}.\n\n"
            "1. Call get_health_insights for the overall picture and the suggestions of the latest day.\n"
            "2. Call get_sleep with days=7: total sleep per night, sleep score and the 14-night sleep debt.\n"
            "3. Call get_recovery with days=7: Nightly Recharge (HRV, ANS charge) and the recovery score.\n"
            "4. Call get_hrv_status with days=7 and get_training_load with days=7: is HRV within its normal "
            "band, and how does this week's load compare with the last four weeks?\n"
            "5. Call get_exercises with days=7 for the workouts, and get_anomalies with days=7 and "
            "get_illness_watch with days=7 for anything flagged.\n"
            "6. Call get_trends for meaningful 30- and 90-day trends.\n\n"
            "Then write: what went well, what needs attention (with the evidence), and two or three concrete "
            "suggestions for next week. " + _honesty()
        )

    @server.prompt(
        name="ready_to_train",
        title="Ready to train today?",
        description="Should I train hard, easy or rest today? From last night's recovery, load and flags.",
    )
    def ready_to_train(user_id: PromptUser = None) -> str:
        return (
            f"Decide whether {_whose(user_id)} is ready to train hard today, should keep it easy, or should "
            "rest.\n\n"
            "1. Call get_health_insights: read the suggestions (train_normally, reduce_intensity, rest_day, "
            "prioritize_recovery, monitor_closely) and the observations of the latest day.\n"
            "2. Call get_recovery with days=3: last night's recovery score and level, HRV and ANS charge "
            "against the previous nights.\n"
            "3. Call get_hrv_status with days=7 and get_illness_watch with days=3: a week below the HRV band "
            "or a flagged illness watch argues for rest.\n"
            "4. Call get_training_load with days=7: a recent spike of the acute load over the chronic load "
            "argues for an easier day.\n"
            "5. Call get_sleep with days=3: last night's sleep and the sleep debt.\n\n"
            "Answer in one line first (train hard / train easy / rest), then the three facts that decided "
            "it, each with its number. Make sure latest_data_day is today or yesterday; if it is older, "
            "say that the answer rests on old data. " + _honesty()
        )
