"""Moved to :mod:`reid_lab.tutorial.profile`; this alias will be removed in the next release."""
from ..tutorial.profile import *  # noqa: F401,F403
from ..tutorial.profile import (  # noqa: F401
    ProfileData,
    load_profile_data,
)
