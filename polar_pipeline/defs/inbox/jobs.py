"""``import_job``: one inbox zip through ``import_export``, the function ``polar-flow import`` calls.

The op deliberately claims no ``duckdb`` pool slot: ``import_export`` runs the rebuild as a nested in-process
run of ``pipeline_job`` whose steps each claim that pool's single slot, so an op holding it would wait for
itself forever. Its own writes take turns anyway: storing the raw records goes through the warehouse's single
writer (``connect_writer`` waits while a run holds the warehouse), and the rebuild's steps use the pool.
"""

from pathlib import Path

import dagster as dg

from polar_pipeline.export_import import import_export, summary_lines
from polar_pipeline.settings import Settings

IMPORT_JOB = "import_job"
IMPORT_OP = "import_inbox_zip"


class InboxZipConfig(dg.Config):
    """Which inbox file to import, and for whom."""

    path: str
    user_id: str


def import_run_config(path: Path, user_id: str) -> dict[str, object]:
    """The run config of ``import_job`` for one inbox zip."""
    return {"ops": {IMPORT_OP: {"config": {"path": str(path), "user_id": user_id}}}}


def build_import_job(settings: Settings) -> dg.JobDefinition:
    @dg.op(name=IMPORT_OP, description="Import one export zip from the inbox; remove it once imported.")
    def import_inbox_zip(context: dg.OpExecutionContext, config: InboxZipConfig) -> None:
        path = Path(config.path)
        try:
            done = import_export(settings, config.user_id, path, instance=context.instance)
        except (OSError, ValueError) as error:  # unreadable path, not an export: the zip stays for a look
            context.log.error(f"inbox import of {path} failed, left in the inbox: {error}")
            raise dg.Failure(f"{path}: {error}") from error
        for line in summary_lines(done):
            context.log.info(line)
        if done.rebuild is not None and not done.rebuild.success:
            raise dg.Failure(
                f"{path}: stored and kept at {done.kept_at}, but rebuild run {done.rebuild.run_id} failed; "
                "the zip stays in the inbox"
            )
        if done.published is False:
            raise dg.Failure(
                f"{path}: stored and rebuilt, but the publish failed; the zip stays in the inbox"
            )
        path.unlink()  # the kept copy is under imported/
        context.log.info(f"removed {path} from the inbox (kept at {done.kept_at})")

    @dg.job(
        name=IMPORT_JOB,
        description="One Polar export zip from $POLAR_HOME/inbox/<user>/ imported, rebuilt and published.",
        tags={"polar-flow/trigger": "inbox_import"},
    )
    def import_job() -> None:
        import_inbox_zip()

    return import_job
