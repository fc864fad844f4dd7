"""Running a stage shard by shard: `stage.py` (the shard spec, the stage, `run_shard`) and
`context.py` (what a stage's `process` gets: config, lake, and the engine's calls, counted).

It sits between the stages and the engines: every stage goes through it, it uses the LLM
layer (the cached engine, requests and their repair), and it rests on core (lake, records,
config). Neither core nor llm imports it.
"""
