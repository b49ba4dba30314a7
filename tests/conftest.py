import os

import tempfile

os.environ.setdefault("HYDRA_FULL_ERROR", "0")
# the checkpoint key of the test session lives in a temporary folder, not the user's ~/.config/agora
os.environ.setdefault("AGORA_HOME", tempfile.mkdtemp(prefix="agora-test-home-"))

SCRIPTED_SMALL = ["llm=scripted", "env.n_players=6", "env.n_traitors=1"]
