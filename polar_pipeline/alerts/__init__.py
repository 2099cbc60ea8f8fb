"""Alerts and the weekly digest: rules over the published tables, delivered through Apprise, exactly once.

* ``rules`` finds, in the serving snapshot's marts and analytics, the days on which a rule's condition holds
  and groups them into episodes; ``live`` judges the account and data freshness at this moment.
* ``texts`` words each episode (what changed, by how much against the personal baseline, since when, what to
  look at) with the insights' metric names and number formats; ``digest`` and ``chart`` write the weekly
  digest and its PNG.
* ``store`` keeps channels (URLs encrypted), per-user rule settings and quiet hours, and every episode and
  delivery in the control store, keyed so that nothing is sent twice.
* ``delivery`` sends what is due through Apprise, retries with back-off and holds during quiet hours;
  ``channels`` checks and redacts channel URLs, and keeps Apprise's own log lines (which can carry them)
  out of the logs.
* ``evaluation`` ties them together for the Dagster sensors and schedule in ``defs/alerts``.

No Dagster import here: the CLI and the API use these modules too.
"""
