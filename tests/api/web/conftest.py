from tests.api.conftest import auth, client  # noqa: F401  (shared fixtures)
from tests.api.web.phone_story import phone_app  # noqa: F401  (a hard-to-lay-out patient)
