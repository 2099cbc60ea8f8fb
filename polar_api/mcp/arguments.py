"""The tools' shared arguments, typed and bounded like the REST API's parameters (``polar_api.deps``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from polar_pipeline.control_store import USER_ID_PATTERN

UserId = Annotated[
    Annotated[str, StringConstraints(pattern=USER_ID_PATTERN.pattern, max_length=100)] | None,
    Field(
        description=(
            "whose data: a user id (1-100 letters, digits, '_' or '-'). Leave it out with a user's own key "
            "(or a stdio server started with --user): the answer is that user's. Required with an admin "
            "key. Naming another user than the key's own is refused."
        )
    ),
]
Days = Annotated[
    int,
    Field(
        ge=1,
        le=365,
        description=(
            "how far back: the user's local dates today-days ... today, both ends included (so up to "
            "days+1 dates); 1-365"
        ),
    ),
]
DaysOrLatest = Annotated[
    int | None,
    Field(
        ge=1,
        le=365,
        description=(
            "leave out for the user's latest day only; or 1-365 for every day of the local dates "
            "today-days ... today"
        ),
    ),
]
