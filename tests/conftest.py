import os

os.environ.setdefault("HYDRA_FULL_ERROR", "0")

SCRIPTED_SMALL = ["llm=scripted", "env.n_players=6", "env.n_traitors=1"]
