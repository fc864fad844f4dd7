"""The record types of the factory: one Arrow schema per dataset, each column described once.

Every stage reads and writes tables of these schemas. The description of each column lives
in the field metadata, so it travels with the Parquet files and reaches the dataset card.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa


def _schema(*fields: tuple[str, pa.DataType, str]) -> pa.Schema:
    return pa.schema(
        [pa.field(name, dtype, metadata={"description": doc}) for name, dtype, doc in fields]
    )


COMPOSITIONS = pa.struct(
    [
        ("ability", pa.string()),
        ("knowledge", pa.string()),
        ("extra_information", pa.string()),
        ("output", pa.string()),
    ]
)

CRITERIA = (
    "specificity",
    "domain_knowledge",
    "complexity",
    "problem_solving",
    "creativity",
    "technical_accuracy",
    "real_world_application",
)

DOCUMENTS = _schema(
    ("id", pa.string(), "Document id: hash of the normalized main text (exact duplicates share it)."),
    ("url", pa.string(), "Canonical URL of the page, or file:// path when the page has none."),
    ("title", pa.string(), "Page title as extracted."),
    ("text", pa.string(), "Main text extracted from the page (boilerplate removed)."),
    ("language", pa.string(), "ISO 639-1 language code identified from the text (py3langid)."),
    ("language_score", pa.float32(), "Confidence of the language identification (0-1)."),
    ("date", pa.string(), "Publication date from the page metadata (YYYY-MM-DD), empty when unknown."),
    ("source", pa.string(), "Where the page came from: input file, WARC/WET file, dataset, or 'crawl'."),
    ("source_offset", pa.int64(), "Byte offset of the WARC record, or row/line number in a table file; null otherwise."),
    ("fetch_time", pa.timestamp("s", tz="UTC"), "When the page was fetched (crawl, WARC date) or read (file mtime)."),
    ("n_words", pa.int32(), "Word count of the main text, one word per character in Chinese, Japanese, Thai and other scripts written without spaces (quality signal)."),
    ("search_query", pa.string(), "For source 'search': the web search query (a seed's keywords) whose hit this page was; null otherwise."),
)

PAGES = _schema(
    ("url", pa.string(), "URL the page was fetched from (after redirects)."),
    ("html", pa.binary(), "Response body of an HTML page, as fetched (null for plain text)."),
    ("text", pa.string(), "Response body of a text/plain page (null for HTML)."),
    ("fetch_time", pa.timestamp("s", tz="UTC"), "When the page was fetched."),
)

DEMONSTRATIONS = _schema(
    ("id", pa.string(), "Demonstration id (derived from seed id and document id)."),
    ("seed_id", pa.string(), "Id of the real seed instruction."),
    ("seed_prompt", pa.string(), "The real seed instruction text."),
    ("intent", pa.string(), "The seed's intent as stated by the LLM."),
    ("keywords", pa.list_(pa.string()), "At most 5 keywords extracted from the seed."),
    ("document_id", pa.string(), "Id of the grounding document."),
    ("document_url", pa.string(), "URL of the grounding document."),
    ("document_text", pa.string(), "The grounding document text, cut to the attribution budget."),
    ("retrieval_score", pa.float32(), "Dense cosine similarity between the retrieval query and the document, whatever the mode chose it."),
    ("retrieval", pa.string(), "Retrieval mode that chose the document: dense, bm25, hybrid or search (attribute.retrieval)."),
    ("retrieval_provider", pa.string(), "What retrieved it: faiss, bm25s, faiss+bm25s, or the search provider as kind:host."),
    ("retrieval_query", pa.string(), "The text retrieval was given: intent and keywords (corpus modes), the keywords (search)."),
    ("retrieval_rank_score", pa.float32(), "What the mode ranked by: cosine (dense), BM25 score (bm25), reciprocal-rank fusion sum (hybrid), 1/rank among the search hits (search)."),
    ("scene", pa.string(), "User identity and motivation linking the document to the seed."),
    ("query_compositions", COMPOSITIONS, "What the seed needs: ability, knowledge, extra_information, output."),
    ("model", pa.string(), "Model that wrote intent, keywords, scene and compositions."),
    ("prompt_version", pa.string(), "Version of the grounding prompt."),
)

# a constraint a program checks (tasks/core/constraints.py): the arguments are JSON, as their
# types differ from kind to kind; `stated`: who put it into the query's words, the model or synthq
# (synthesize.constraints.unstated=append)
CONSTRAINTS = pa.list_(pa.struct([("kind", pa.string()), ("args", pa.string()), ("stated", pa.string())]))

INSTRUCTIONS = _schema(
    ("id", pa.string(), "Instruction id (derived from document id and prompt version)."),
    ("document_id", pa.string(), "Id of the document the instruction is grounded in."),
    ("document_url", pa.string(), "URL of that document."),
    ("demonstration_ids", pa.list_(pa.string()), "Demonstrations shown to the model."),
    ("thought", pa.string(), "How the model designed the scenario."),
    ("scene", pa.string(), "User identity and motivation."),
    ("query_compositions", COMPOSITIONS, "Ability, knowledge, extra_information and output of the query."),
    ("query", pa.string(), "The synthesized, self-contained instruction."),
    ("constraints", CONSTRAINTS, "Verifiable constraints the query states: IFEval instruction ids and their arguments "
     "(JSON); empty unless synthesize.constraints is on."),
    ("model", pa.string(), "Model that synthesized the instruction."),
    ("prompt_version", pa.string(), "Version of the synthesis prompt."),
)

_SCORE_FIELDS = tuple(
    (f"score_{c}", pa.int8(), f"1 if the query meets the '{c.replace('_', ' ')}' criterion, else 0.")
    for c in CRITERIA
)

CURATED = _schema(
    *[(f.name, f.type, f.metadata[b"description"].decode()) for f in INSTRUCTIONS],
    *_SCORE_FIELDS,
    ("score_total", pa.int8(), "Sum of the seven criterion scores (0-7)."),
    ("score_analysis", pa.struct([(c, pa.string()) for c in CRITERIA]), "The judge's analysis of each criterion, written before its score."),
    ("score_model", pa.string(), "Model that scored the query."),
    ("score_prompt_version", pa.string(), "Version of the scoring prompt."),
    ("topic", pa.int32(), "Topic cluster of the query (-1 when no topic selection ran)."),
    ("moderation", pa.string(), "Moderation verdict: safe or unsafe; empty when moderation was off."),
    ("moderation_categories", pa.list_(pa.string()), "Hazard categories the moderation found (MLCommons taxonomy)."),
)

# The respond stage: answers (several samples per query, optionally an expert identity and a
# rationale), their judgements, and preference pairs. Lineage columns follow the query.
ASPECTS = ("instruction_following", "helpfulness", "truthfulness", "honesty")

MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))

_QUERY_LINEAGE = (
    ("query_id", pa.string(), "Id of the curated instruction answered."),
    ("query", pa.string(), "The instruction (the user turn)."),
    ("document_id", pa.string(), "Id of the document the instruction is grounded in."),
    ("document_url", pa.string(), "URL of that document."),
    ("demonstration_ids", pa.list_(pa.string()), "Demonstrations shown when the instruction was synthesized."),
    ("query_model", pa.string(), "Model that synthesized the instruction."),
    ("query_prompt_version", pa.string(), "Version of the synthesis prompt."),
    ("query_score", pa.int8(), "The instruction's total score on the seven criteria (0-7)."),
    ("constraints", CONSTRAINTS, "The instruction's verifiable constraints (empty when it has none)."),
)

RESPONSES = _schema(
    ("id", pa.string(), "Answer id (derived from query id, variant and sample index)."),
    *_QUERY_LINEAGE,
    ("variant", pa.string(), "direct: the answer alone; rationale: explicit reasoning, then the answer."),
    ("sample", pa.int16(), "Index of this answer among the samples drawn for the query and variant."),
    ("expert", pa.string(), "Second-person description of the ideal expert (the answering call's system message); empty when respond.expert is off."),
    ("constraints_followed", pa.list_(pa.bool_()), "Per constraint of the query, in its order: whether the answer follows it "
     "(IFEval's strict check of the final answer); empty for a query without constraints."),
    ("reasoning", pa.string(), "The reasoning part of a rationale answer; empty for direct answers."),
    ("answer", pa.string(), "The final answer."),
    ("response", pa.string(), "The assistant turn as trained on: the answer, or reasoning then answer."),
    ("temperature", pa.float32(), "Sampling temperature of the answering call."),
    ("max_tokens", pa.int32(), "Token limit of the answering call."),
    ("seed", pa.int64(), "Sampling seed of the answering request (its samples are drawn in order from it); engines without per-request seeds (vLLM's CPU build) use engine.seed."),
    ("output_tokens", pa.int32(), "Tokens of this answer (for n > 1 on an OpenAI-compatible server: of all samples of the request)."),
    ("model", pa.string(), "Model that wrote the expert identity and the answer."),
    ("expert_prompt_version", pa.string(), "Version of the expert-identity prompt; empty when off."),
    ("answer_prompt_version", pa.string(), "Version of the answering prompt."),
    ("judge", pa.string(), "What scored the answer: 'llm:<model>' (rubric) or 'reward_model:<folder name>'."),
    ("judge_prompt_version", pa.string(), "Version of the judging prompt; empty for a reward model."),
    ("score", pa.float32(), "Overall score: mean of the four aspects (1-10) for the LLM judge, the reward model's scalar otherwise."),
    *[(f"score_{a}", pa.int8(), f"LLM judge: '{a.replace('_', ' ')}' from 1 to 10 (null for a reward model).") for a in ASPECTS],
    ("judge_reasons", pa.string(), "LLM judge: the short reason given before each aspect's score, as JSON."),
)

PAIRS = _schema(
    ("id", pa.string(), "Pair id (query id and variant)."),
    *_QUERY_LINEAGE,
    ("variant", pa.string(), "Variant of both answers (direct or rationale)."),
    ("prompt", MESSAGES, "The prompt as chat messages: system (the expert identity, when used) and user (the query)."),
    ("chosen", MESSAGES, "The best-scored answer as an assistant message."),
    ("rejected", MESSAGES, "The lower-scored answer as an assistant message."),
    ("score_chosen", pa.float32(), "Score of the chosen answer."),
    ("score_rejected", pa.float32(), "Score of the rejected answer."),
    ("chosen_id", pa.string(), "Answer id of the chosen answer."),
    ("rejected_id", pa.string(), "Answer id of the rejected answer."),
    ("chosen_model", pa.string(), "Model that wrote the chosen answer."),
    ("rejected_model", pa.string(), "Model that wrote the rejected answer."),
    ("judge", pa.string(), "What scored both answers."),
    ("rule", pa.string(), "How the rejected answer was picked: lowest or random_lower; verified for a query with "
     "constraints (chosen follows them all, rejected fails one or more)."),
    ("chosen_followed", pa.list_(pa.bool_()), "Per constraint of the query: whether the chosen answer follows it."),
    ("rejected_followed", pa.list_(pa.bool_()), "Per constraint of the query: whether the rejected answer follows it."),
)

VERIFIABLE = _schema(
    ("prompt", MESSAGES, "The query as chat messages (user): what TRL's GRPOTrainer generates completions for."),
    ("constraints", CONSTRAINTS, "The constraints a completion must follow, scored by "
     "synthq.tasks.core.constraints.constraint_reward (the share followed, 0 to 1)."),
    ("prompt_id", pa.string(), "Id of the query (the curated instruction)."),
)

SFT = _schema(
    ("messages", MESSAGES, "The conversation to train on: system (the expert identity, when used), user (the query), assistant (the best-scored answer)."),
    ("prompt", MESSAGES, "The same conversation up to the answer (system, user): TRL's conversational prompt-completion format, which trains on the completion only."),
    ("completion", MESSAGES, "The best-scored answer as an assistant message."),
    ("prompt_id", pa.string(), "Id of the query (the curated instruction)."),
    ("query", pa.string(), "The query as plain text."),
    ("variant", pa.string(), "direct or rationale (reasoning, then the answer)."),
    ("answer_id", pa.string(), "Id of the answer in the responses dataset."),
    ("score", pa.float32(), "The judge's score of the answer."),
    ("judge", pa.string(), "What scored the answer."),
    *[(f.name, f.type, f.metadata[b"description"].decode()) for f in RESPONSES if f.name in (
        "document_id", "document_url", "demonstration_ids", "query_model", "query_prompt_version", "query_score",
        "model", "expert_prompt_version", "answer_prompt_version", "judge_prompt_version")],
)

REJECTED = _schema(
    ("stage", pa.string(), "Stage that removed the record."),
    ("reason", pa.string(), "Short machine-readable reason, counted in the stage report."),
    ("detail", pa.string(), "Human-readable detail: what exactly was wrong."),
    ("record_id", pa.string(), "Id of the removed record (or input line/file when it had none)."),
    ("record", pa.string(), "The removed record (or raw input) as JSON, for inspection."),
)


def prompt_messages(answer: dict) -> list[dict]:
    """The chat prompt an answer was trained for: system (its expert identity, when it has one), user (the query)."""
    system = [{"role": "system", "content": answer["expert"]}] if answer["expert"] else []
    return [*system, {"role": "user", "content": answer["query"]}]


def rejection(stage: str, reason: str, detail: str, record_id: str, record: Any) -> dict:
    """One row of the rejected dataset."""
    return {
        "stage": stage,
        "reason": reason,
        "detail": detail,
        "record_id": record_id,
        "record": json.dumps(record, default=str, ensure_ascii=False),
    }


def table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows (dicts) to a table of exactly this schema; missing columns raise."""
    return pa.Table.from_pylist(rows, schema=schema)


def describe(schema: pa.Schema) -> dict[str, str]:
    """Column name -> description, for dataset cards and docs."""
    return {f.name: (f.metadata or {}).get(b"description", b"").decode() for f in schema}
