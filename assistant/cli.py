"""Command-line interface: `assistant <command>` (see the machine interface contract)."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any

from assistant.config import ConfigError, apply_offline_environment, load_settings

apply_offline_environment()

EXIT_USAGE = 2
EXIT_FAILURE = 1


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _fail(message: str, code: int = EXIT_FAILURE) -> int:
    print(f"エラー: {message}", file=sys.stderr)
    return code


def _progress_to_stderr(message: str) -> None:
    print(f"… {message}", file=sys.stderr, flush=True)


def _assistant(args: argparse.Namespace):  # noqa: ANN202
    from assistant.service import Assistant

    # Building the index on first use can take minutes: say so on stderr (stdout stays the result).
    return Assistant(load_settings(), progress=_progress_to_stderr)


# -- info / cases / source ----------------------------------------------------------------------
def _backends(settings) -> dict[str, Any]:  # noqa: ANN001 - Settings
    """Which servers (or embedded stores) are in use, and whether each answers now."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from assistant.dialogue.store import database_label, get_engine

    url = settings.resolved_database_url
    database: dict[str, Any] = {"kind": make_url(url).get_backend_name(), "where": database_label(url)}
    try:
        with get_engine(url).connect() as connection:
            connection.execute(text("SELECT 1"))
        database["answers"] = True
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        database.update(answers=False, error=str(exc)[:300])
    if settings.chroma_url:
        from assistant.index.remote import chroma_answers

        answers, detail = chroma_answers(settings.chroma_url)
        index = {"kind": "chroma-server", "where": settings.chroma_url, "answers": answers}
        if not answers:
            index["error"] = detail
    else:
        index = {"kind": "chroma-embedded", "where": str(settings.index_dir), "answers": settings.index_dir.is_dir()}
    documents = {"kind": "database", "where": database["where"]} if settings.database_url else {
        "kind": "files", "where": str(settings.documents_dir)}
    return {"database": database, "index": index, "documents": documents}


def cmd_info(args: argparse.Namespace) -> int:
    from importlib import metadata

    from assistant import __version__
    from assistant.curation.effective import load_effective_knowledge
    from assistant.index.store import index_status

    settings = load_settings()
    settings.ensure_dirs()
    packages = {}
    for name in ("chromadb", "sentence-transformers", "langchain", "langchain-core", "gradio", "bm25s", "SudachiPy", "torch", "ja-ginza"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    knowledge = load_effective_knowledge(settings)
    backends = _backends(settings)
    info = {
        "version": __version__,
        "python": platform.python_version(),
        "packages": packages,
        "paths": {
            "home": str(settings.home),
            "corpus": str(settings.corpus_dir),
            "index": str(settings.index_dir),
            "documents": str(settings.documents_dir),
            "database": settings.resolved_database_url,
            "exports": str(settings.exports_dir),
        },
        "corpus": {
            "cases": len(knowledge.cases),
            "qa": len(knowledge.qa),
            "guidance_pages": len(knowledge.guidance),
            "sources": len(knowledge.sources),
            "content_hash": knowledge.content_hash,
            "corrections": len(knowledge.overlay_outcomes),
            "corrections_not_applied": sum(1 for o in knowledge.overlay_outcomes if not o.applies),
        },
        "backends": backends,
        "index": index_status(settings, knowledge) if backends["database"]["answers"] and backends["index"]["answers"]
        else {"state": "unavailable"},
        "models": {
            "embedding": settings.embedding_model,
            "reranker": settings.reranker_model or None,
        },
        "llm": {
            "backend": settings.llm_backend,
            "model": settings.llm_model or settings.llm_model_path or None,
            "base_url": settings.llm_base_url or None,
        },
        "settings": settings.public_dict(),
    }
    if args.json:
        _print_json(info)
    else:
        print(f"独自利用事務 情報連携 事前相談アシスタント {__version__}")
        print(f"データ保存先: {settings.home}")
        print(f"索引: {info['index']['state']}  事例: {len(knowledge.cases)}  Q&A: {len(knowledge.qa)}")
        print(f"埋め込みモデル: {settings.embedding_model}  LLM: {settings.llm_backend}")
        for name, label in (("database", "データベース"), ("index", "索引"), ("documents", "登録文書")):
            backend = backends[name]
            answers = {True: "応答あり", False: "応答なし"}.get(backend.get("answers"), "")
            print(f"{label}: {backend['kind']}（{backend['where']}）{answers}")
    return 0


CASE_CONTRACT_KEYS = ("case", "name", "aliases", "analogous_statutory_affair", "confidence", "as_of", "sources")


def cmd_cases(args: argparse.Namespace) -> int:
    rows = [{k: row[k] for k in CASE_CONTRACT_KEYS} for row in _assistant(args).cases()]
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            print(f"({row['case']}) {row['name']}  [{row['confidence']}]")
    return 0


def cmd_source(args: argparse.Namespace) -> int:
    assistant = _assistant(args)
    try:
        data = assistant.source(args.source_id)
    except KeyError as exc:
        return _fail(str(exc.args[0]))
    keys = ("source_id", "title", "locator", "text", "as_of", "confidence", "origin")
    if args.json:
        _print_json({k: data[k] for k in keys} | {k: v for k, v in data.items() if k not in keys})
    else:
        print(f"{data['title']}（{data['locator']}、{data['as_of']}時点、{data['confidence']}）\n{data['text']}")
    return 0


# -- ingest / index -------------------------------------------------------------------------------
def cmd_ingest(args: argparse.Namespace) -> int:
    from assistant.ingest.pipeline import IngestOptions, ingest_documents

    settings = load_settings()
    options = IngestOptions(kind=args.kind, as_of=args.as_of, title=args.title, official=args.official,
                            keep_original=args.keep_original, confidence=args.confidence, scope=args.scope,
                            municipality=args.municipality)

    def show(event) -> None:  # noqa: ANN001 - IngestEvent
        if not args.json and event.stage != "done":
            _progress_to_stderr(f"[{event.fraction:4.0%}] {event.message}")

    report = ingest_documents(settings, args.paths, options, remove=args.remove, update_index=not args.no_index,
                              progress=show)
    if args.json:
        _print_json(report.to_dict())
    else:
        labels = {"added": "追加", "updated": "更新", "unchanged": "変更なし", "removed": "削除", "error": "エラー", "not_found": "未登録"}
        for r in report.results:
            print(f"[{labels[r.status]}] {r.path}: {r.message}")
        if report.index:
            how = "差分で更新しました" if report.index.incremental else "再構築しました"
            print(f"索引を{how}（{report.index.chunks} チャンク、{report.index.seconds:.1f} 秒）")
    if report.note:
        print(f"注意: {report.note}", file=sys.stderr)
    if not report.results:
        return _fail("登録できるファイルがありません（対応形式: PDF・Word・Excel・CSV・HTML・Markdown・テキスト）")
    return EXIT_FAILURE if report.errors else 0


def _print_index_status(status: dict[str, Any]) -> None:
    print(f"状態: {status['state']}  チャンク: {status.get('chunks')}  文書: {status.get('documents')}  構築: {status.get('built_at')}")
    for key, label in (("missing_files", "見つからないファイル"), ("damaged_files", "内容が変わったファイル")):
        for name in status.get(key) or []:
            print(f"  {label}: {name}")
    if status.get("error"):
        print(status["error"])


def cmd_index(args: argparse.Namespace) -> int:
    from assistant.curation.effective import load_effective_knowledge
    from assistant.index.store import build_index, index_status

    settings = load_settings()
    knowledge = load_effective_knowledge(settings)
    if args.action == "status":
        status = index_status(settings, knowledge)
        if args.json:
            _print_json(status)
        else:
            _print_index_status(status)
        return 0
    if args.action == "build":
        status = index_status(settings, knowledge)
        if status["state"] == "ready" and not args.force:
            if args.json:
                _print_json({"built": False, "status": status})
            else:
                print("索引は最新です（再構築するには `assistant index rebuild`）")
            return 0
    say = None if args.json else _progress_to_stderr
    report = build_index(settings, knowledge, progress=say)
    if args.json:
        _print_json({"built": True} | report.__dict__)
    else:
        print(f"索引を構築しました: {report.build_id}（{report.chunks} チャンク、{report.size_bytes / 1e6:.1f} MB、{report.seconds:.1f} 秒）")
    return 0


def cmd_reader(args: argparse.Namespace) -> int:
    """Train the message reader from corpus/reader (cached under ASSISTANT_HOME), or measure it."""
    from assistant.understand.data import data_fingerprint, load_labels, load_utterances
    from assistant.understand.training import build_model, cross_validate, error_summary

    settings = load_settings()
    settings.ensure_dirs()
    if args.action == "train":
        started = time.perf_counter()
        say = None if args.json else (lambda message: print(f"… {message}", file=sys.stderr))
        model = build_model(settings.corpus_dir, settings.cache_dir, progress=say, force=args.force)
        summary = {"fingerprint": model.fingerprint, "seconds": round(time.perf_counter() - started, 2),
                   "intents": len(model.labels.intents), "changes": len(model.labels.changes)}
        if args.json:
            _print_json(summary)
        else:
            print(f"読み取りモデル: {summary['fingerprint']}（{summary['seconds']} 秒）")
        return 0
    labels = load_labels(settings.corpus_dir)
    report = cross_validate(load_utterances(settings.corpus_dir, labels), labels, folds=args.folds)
    if args.json:
        _print_json({"fingerprint": data_fingerprint(settings.corpus_dir)} | {
            k: v for k, v in report.__dict__.items() if k not in ("intents", "changes", "errors")}
            | {"labels": [s.__dict__ for s in [*report.intents, *report.changes]], "errors": report.errors})
    else:
        print(report.table())
        print("\n主な誤り:\n" + error_summary(report))
    return 0


# -- answers --------------------------------------------------------------------------------------
def cmd_classify(args: argparse.Namespace) -> int:
    result = _assistant(args).classify(args.text)
    if args.json:
        _print_json(result)
    else:
        from assistant.answer.render import render_classification

        print(render_classification(result))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from assistant.audit import ASK, CLI_ACTOR, AuditLog, source_ids

    assistant = _assistant(args)
    result = assistant.ask(args.text)
    AuditLog.for_settings(assistant.settings).record(ASK, CLI_ACTOR, question=args.text, sources=source_ids(result["citations"]))
    if args.json:
        _print_json(result)
    else:
        print(result["answer"])
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from assistant.batch import run_batch

    summary = run_batch(_assistant(args), Path(args.input), Path(args.output))
    print(json.dumps(summary, ensure_ascii=False), file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from assistant.evaluate import run_evaluation

    report = run_evaluation(
        _assistant(args),
        [Path(p) for p in args.dataset],
        out_dir=Path(args.out) if args.out else None,
        baseline=not args.no_baseline,
    )
    print(report["table"])
    print(f"\nJSON: {report['json_path']}\nHTML: {report['html_path']}")
    return 0


def cmd_consult(args: argparse.Namespace) -> int:
    """Interactive consultation on the command line (no LLM, no network)."""
    from assistant.validation import InputError

    assistant = _assistant(args)
    print("独自利用事務 情報連携 事前相談アシスタント（終了: 空行のまま Enter または Ctrl-D）", flush=True)
    print("索引と辞書を読み込んでいます…", flush=True)
    started = time.perf_counter()
    assistant.warm_up()
    print(f"準備ができました（{time.perf_counter() - started:.1f} 秒）。相談内容を入力してください。", flush=True)
    while True:
        try:
            line = input("\n相談> ")
        except EOFError:
            break
        if not line.strip():
            break
        try:
            print(assistant.ask(line)["answer"])
        except InputError as exc:
            print(f"入力エラー: {exc}")
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from assistant.dialogue.chat import ChatService

    from assistant.audit import CHAT, CLI_ACTOR, AuditLog, source_ids

    assistant = _assistant(args)
    result = ChatService(assistant).turn(args.session, args.message)
    AuditLog.for_settings(assistant.settings).record(
        CHAT, CLI_ACTOR, question=args.message, sources=source_ids(result["citations"]),
        session_id=result["session"], turn=result["turn"],
    )
    if args.json:
        _print_json(result)
    else:
        print(result["answer"])
    return 0


def cmd_checklist(args: argparse.Namespace) -> int:
    from assistant.dialogue.checklist import ChecklistService

    service = ChecklistService(_assistant(args))
    if args.export:
        if not args.output:
            return _fail("--export には --output FILE が必要です", EXIT_USAGE)
        path = service.export(args.session, args.export, Path(args.output), person=args.person or "", contact=args.contact or "")
        if args.json:
            _print_json({"session": args.session, "export": args.export, "output": str(path)})
        else:
            print(f"事前相談シートを書き出しました: {path}")
        return 0
    result = service.step(args.session, args.answer, expected_step=args.step)
    if args.json:
        _print_json(result)
    else:
        print(result["question"])
    if not result.get("accepted", True):
        return _fail(result["message"])
    return 0


# -- knowledge (curation) -------------------------------------------------------------------------
def _curator():  # noqa: ANN202
    from assistant.curation.curator import Curator

    settings = load_settings()
    settings.ensure_dirs()
    return Curator(settings)


def _cli_actor(args: argparse.Namespace):  # noqa: ANN202
    from assistant.audit import Actor

    user = (getattr(args, "user", None) or "").strip() or None
    return Actor(user=user)


def _reindex(curator, args: argparse.Namespace) -> dict[str, Any] | None:  # noqa: ANN001
    """Rebuild the index so that answers use the corrected facts (unless --no-index)."""
    if args.no_index:
        if not args.json:
            print("注意: 索引はまだ再構築していません。`assistant index rebuild` で回答に反映されます", file=sys.stderr)
        return None
    from assistant.index.store import build_index

    report = build_index(curator.settings, curator.knowledge(), progress=None if args.json else _progress_to_stderr)
    if not args.json:
        print(f"索引を再構築しました（{report.chunks} チャンク、{report.seconds:.1f} 秒）", file=sys.stderr)
    return {"build_id": report.build_id, "chunks": report.chunks, "seconds": round(report.seconds, 2)}


def _fact_row(fact) -> dict[str, Any]:  # noqa: ANN001
    return {"path": fact.path, "entry": fact.entry_label, "field": fact.ref.field_label, "value": fact.value,
            "confidence": fact.confidence, "as_of": fact.as_of, "sources": fact.sources}


def _print_history(rows: list[dict[str, Any]]) -> None:
    from assistant.curation.curator import brief

    if not rows:
        print("補正の記録はありません")
    for row in rows:
        who = row["user"] or "（名前なし）"
        kind = "取り消し" if row["action"] == "revert" else "補正"
        confidence = f"、確度 {row['confidence_before']}→{row['confidence']}" if row["confidence"] else ""
        source = f"、出典 {row['source']}" if row["source"] else ""
        print(f"#{row['id']} {row['at']} {who}（{row['client']}） {kind} {row['path']}: 「{brief(row['before'])}」→"
              f"「{brief(row['after'])}」{confidence}{source}")
        print(f"    理由: {row['reason']}  状態: {row['status']}")


def cmd_knowledge(args: argparse.Namespace) -> int:
    from assistant.curation.curator import CurationError
    from assistant.curation.merge import MergeError

    try:
        return KNOWLEDGE_ACTIONS[args.action](args)
    except (CurationError, MergeError) as exc:
        return _fail(str(exc), EXIT_USAGE)


def knowledge_list(args: argparse.Namespace) -> int:
    from assistant.curation.curator import brief

    facts = _curator().facts(unconfirmed_only=args.unconfirmed, collection=args.kind, query=args.query or "")
    if args.json:
        _print_json([_fact_row(f) for f in facts])
        return 0
    for fact in facts:
        print(f"[{fact.confidence}] {fact.path}  {fact.entry_label} / {fact.ref.field_label}: {brief(fact.value)}")
    print(f"{len(facts)} 件" + ("（要確認のもの）" if args.unconfirmed else ""))
    return 0


def knowledge_show(args: argparse.Namespace) -> int:
    from assistant.knowledge.overlay import shown

    data = _curator().show(args.path)
    if args.json:
        _print_json(data)
        return 0
    print(f"{data['entry']} / {data['field']}（{data['path']}）")
    print(f"値: {shown(data['value'])}")
    print(f"確度: {data['confidence']}  時点: {data['as_of']}")
    print("出典:")
    for source in data["sources"]:
        print(f"  - {source['id']}: {source.get('title') or ''}（{source.get('as_of') or '時点不明'}）")
    print("履歴:")
    _print_history(data["history"])
    return 0


def knowledge_log(args: argparse.Namespace) -> int:
    rows = _curator().log(args.path)
    if args.json:
        _print_json(rows)
    else:
        _print_history(rows)
    return 0


def knowledge_set(args: argparse.Namespace) -> int:
    from assistant.curation.curator import SetRequest

    curator = _curator()
    request = SetRequest(
        path=args.path, value=args.value, add=args.add or [], remove=args.remove or [], clear=args.clear,
        confidence=args.confidence, source=args.source, page=args.page, as_of=args.as_of, reason=args.reason or "",
    )
    planned, row = curator.set(request, _cli_actor(args))
    index = _reindex(curator, args)
    if args.json:
        _print_json({"correction": row.to_dict(), "change": planned.to_dict(), "index": index})
    else:
        print(f"補正 #{row.id} を記録しました: {planned.before.entry_label} / {planned.ref.field_label}")
        for what, before, after in planned.diff():
            print(f"  {what}: {before} → {after}")
    return 0


def knowledge_revert(args: argparse.Namespace) -> int:
    curator = _curator()
    rows = curator.revert(args.ids, args.reason or "", _cli_actor(args))
    index = _reindex(curator, args)
    if args.json:
        _print_json({"reverts": [r.to_dict() for r in rows], "index": index})
    else:
        for row in rows:
            print(f"補正 #{row.reverts} を取り消しました（記録 #{row.id}、{row.path}）")
    return 0


def knowledge_export(args: argparse.Namespace) -> int:
    curator = _curator()
    output = Path(args.output) if args.output else None
    text, count = curator.export(output)
    if args.json:
        _print_json({"output": str(output) if output else None, "corrections": count,
                     "overlay": None if output else text})
    elif output:
        print(f"補正 {count} 件を {output} に書き出しました")
    else:
        print(text, end="")
    return 0


def knowledge_import(args: argparse.Namespace) -> int:
    from assistant.curation.tables import TableImporter

    curator = _curator()
    importer = TableImporter(curator)
    plan = importer.plan(Path(args.file), mapping=args.map or [], as_of=args.as_of, title=args.title,
                         confidence=args.confidence)
    data = plan.to_dict() | {"applied": False}
    if args.apply and plan.ok and plan.changes:
        rows = importer.apply(plan, _cli_actor(args))
        data |= {"applied": True, "corrections": [r.id for r in rows], "index": _reindex(curator, args)}
    if args.json:
        _print_json(data)
    else:
        for line in plan.summary_lines():
            print(line)
        if not plan.ok:
            print("表に誤りがあるため、何も変更していません。誤りを直してからもう一度実行してください")
        elif data["applied"]:
            print(f"{len(data['corrections'])} 件の補正として取り込みました（出典: {plan.source.id if plan.source else ''}）")
        elif plan.changes:
            print("これはプレビューです。取り込むには --apply を付けて実行してください")
        else:
            print("登録と違うところはありません")
    return 0 if plan.ok else EXIT_FAILURE


def knowledge_merge(args: argparse.Namespace) -> int:
    from assistant.curation.merge import merge_overlay, read_overlay

    corpus = Path(args.corpus) if args.corpus else load_settings().corpus_dir
    report = merge_overlay(read_overlay(Path(args.file)), corpus)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(f"{corpus} に取り込みました: {'、'.join(report.files) or '変更なし'}（項目 {len(report.entries)} 件、出典 {len(report.sources)} 件）")
        for outcome in report.skipped:
            print(f"取り込まなかった補正 #{outcome.correction} {outcome.path}: {outcome.label}（{outcome.message}）")
    return 0


KNOWLEDGE_ACTIONS = {
    "list": knowledge_list, "show": knowledge_show, "log": knowledge_log, "set": knowledge_set,
    "revert": knowledge_revert, "export": knowledge_export, "import": knowledge_import, "merge": knowledge_merge,
}


def _add_knowledge_parser(sub: Any) -> None:
    from assistant.knowledge.overlay import COLLECTIONS, CONFIDENCES

    p = sub.add_parser("knowledge", help="知識ベースの補正（事実の確認・修正、履歴、取り消し、書き出し、公式の表の取り込み）")
    p.set_defaults(func=cmd_knowledge)
    actions = p.add_subparsers(dest="action", required=True)
    paths = "項目の指定（例: cases.5.analogous_statutory_affair、qa.qa-012.answer、procedure.checklist.req-providers.why）"

    def who(q: argparse.ArgumentParser, *, index: bool = True) -> None:
        q.add_argument("--user", help="補正した人の名前（履歴と監査ログに残ります）")
        if index:
            q.add_argument("--no-index", action="store_true", help="索引の再構築を行わない（回答への反映は再構築の後）")
        q.add_argument("--json", action="store_true")

    q = actions.add_parser("list", help="事実の一覧（--unconfirmed で要確認のものだけ）")
    q.add_argument("--unconfirmed", action="store_true", help="要確認の事実だけ（確認が必要なものの一覧）")
    q.add_argument("--kind", choices=list(COLLECTIONS), help="種類で絞り込む")
    q.add_argument("--query", help="語で絞り込む（空白区切りで AND）")
    q.add_argument("--json", action="store_true")

    q = actions.add_parser("show", help="一つの事実の値・確度・出典・履歴")
    q.add_argument("path", help=paths)
    q.add_argument("--json", action="store_true")

    q = actions.add_parser("log", help="補正の履歴（誰が・いつ・何を・なぜ）")
    q.add_argument("path", nargs="?", help=paths + "（省略するとすべて）")
    q.add_argument("--json", action="store_true")

    q = actions.add_parser("set", help="事実を修正・確認する（出典・時点・確度・理由を付けて）")
    q.add_argument("path", help=paths)
    q.add_argument("value", nargs="?", help="新しい値（一覧の項目は「、」区切りか JSON の配列。省略すると値は変えず確度と出典だけ）")
    q.add_argument("--add", action="append", help="一覧の項目に足す（繰り返し指定できます）")
    q.add_argument("--remove", action="append", help="一覧の項目から除く（繰り返し指定できます）")
    q.add_argument("--clear", action="store_true", help="値を空（不明）にする")
    q.add_argument("--confidence", choices=list(CONFIDENCES), help="補正後の確度")
    q.add_argument("--source", help="根拠: 登録した文書（doc-… / ファイル名 / 題名）、sources.yaml の id、又は引用元の書誌")
    q.add_argument("--page", help="出典のページや節（例: p.12）")
    q.add_argument("--as-of", dest="as_of", help="出典の時点（YYYY-MM-DD）")
    q.add_argument("--reason", required=True, help="補正の理由（履歴と監査ログに残ります）")
    who(q)

    q = actions.add_parser("revert", help="補正を取り消す（取り消しも履歴に残ります）")
    q.add_argument("ids", nargs="+", type=int, help="取り消す補正の番号（`assistant knowledge log` の #番号）")
    q.add_argument("--reason", required=True, help="取り消す理由")
    who(q)

    q = actions.add_parser("export", help="補正を YAML（corpus/ に重ねる差分）に書き出す")
    q.add_argument("--output", help="書き出すファイル（省略すると標準出力）")
    q.add_argument("--json", action="store_true")

    q = actions.add_parser("import", help="公式の事例の表（Excel / CSV / PDF）を取り込む（--apply を付けるまでプレビュー）")
    q.add_argument("file", help="事例の表のファイル（.xlsx / .csv / テキスト層のある .pdf）")
    q.add_argument("--apply", action="store_true", help="プレビューの内容を補正として取り込む")
    q.add_argument("--map", action="append", metavar="列名=項目",
                   help="列の対応を指定する（例: 準ずる事務=analogous_statutory_affair、備考欄=-）。繰り返し指定できます")
    q.add_argument("--as-of", dest="as_of", help="表の時点（YYYY-MM-DD。取り込むときは必須）")
    q.add_argument("--title", help="表の題名（出典の一覧に表示。省略するとファイル名）")
    q.add_argument("--confidence", choices=list(CONFIDENCES), default="確認済み", help="取り込んだ事実の確度（既定: 確認済み）")
    who(q)

    q = actions.add_parser("merge", help="書き出した補正を corpus/ のファイルに取り込む（保守する人向け）")
    q.add_argument("file", help="`assistant knowledge export` で書き出したファイル")
    q.add_argument("--corpus", help="取り込む corpus フォルダ（省略すると設定の corpus）")
    q.add_argument("--json", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    from assistant.knowledge.overlay import CONFIDENCES

    parser = argparse.ArgumentParser(prog="assistant", description="独自利用事務 情報連携 事前相談アシスタント")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="バージョン・保存先・索引・モデルの情報")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("cases", help="事例の一覧")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_cases)

    p = sub.add_parser("source", help="索引済みチャンクの本文")
    p.add_argument("source_id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_source)

    p = sub.add_parser("ingest", help="公式資料（PDF/Word/Excel/HTML/Markdown/テキスト）の登録")
    p.add_argument("paths", nargs="+")
    p.add_argument("--kind", default="other", choices=["guidance", "qa", "cases", "law", "other"])
    p.add_argument("--as-of", dest="as_of")
    p.add_argument("--title")
    p.add_argument("--official", action="store_true", help="公式資料として登録する（確認済みとして扱う。既定は要確認）")
    p.add_argument(
        "--keep-original",
        dest="keep_original",
        action="store_true",
        help="元のファイルを保管する（既定は保管しない。保管したファイルは --remove で削除される）",
    )
    p.add_argument("--confidence", choices=list(CONFIDENCES), help="確度（既定: --official なら確認済み、それ以外は要確認）")
    p.add_argument("--scope", default="public", choices=["public", "municipality"],
                   help="範囲: public（すべての利用者）/ municipality（--municipality の団体の利用者だけ）")
    p.add_argument("--municipality", help="団体の資料のときの団体名")
    p.add_argument("--remove", action="store_true", help="登録済みの文書を削除する（保管した元のファイルも削除）")
    p.add_argument("--no-index", action="store_true", help="索引の再構築を行わない")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("index", help="索引の構築・再構築・状態")
    p.add_argument("action", choices=["build", "rebuild", "status"])
    p.add_argument("--force", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_index)

    p = sub.add_parser("reader", help="文の読み取りモデルの学習（train）と交差検証（eval）")
    p.add_argument("action", choices=["train", "eval"])
    p.add_argument("--force", action="store_true", help="キャッシュがあっても学習し直す")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reader)

    p = sub.add_parser("classify", help="事務に当てはまる事例の判定")
    p.add_argument("text")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("ask", help="一問一答")
    p.add_argument("text")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("batch", help="JSONL の一括処理")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("eval", help="評価データでの評価（JSON・HTML レポート）")
    p.add_argument("--dataset", nargs="+", required=True)
    p.add_argument("--out")
    p.add_argument("--no-baseline", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("consult", help="コマンドラインでの相談（対話）")
    p.set_defaults(func=cmd_consult)

    p = sub.add_parser("chat", help="複数ターンの相談（セッションは保存されます）")
    p.add_argument("--session", required=True)
    p.add_argument("--message", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("checklist", help="届出前チェックリストの対話")
    p.add_argument("--session", required=True)
    p.add_argument("--answer")
    p.add_argument("--step", help="回答する質問の step（表示された質問から進んでいれば記録しない）")
    p.add_argument("--export", choices=["md", "docx", "pdf"])
    p.add_argument("--output")
    p.add_argument("--person", help="シートに記載する担当者名（--export と使う。保存しません）")
    p.add_argument("--contact", help="シートに記載する連絡先（--export と使う。保存しません）")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_checklist)

    _add_knowledge_parser(sub)
    return parser


def _undecodable_argument(argv: list[str]) -> int | None:
    """The 1-based position of the first argument that was not valid UTF-8 (decoded with surrogateescape)."""
    from assistant.validation import has_surrogates

    return next((position for position, arg in enumerate(argv, start=1) if has_surrogates(arg)), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    position = _undecodable_argument(argv)
    if position is not None:
        return _fail(
            f"{position} 番目の引数に UTF-8 として読めない文字が含まれています。端末やファイル名の文字コードを UTF-8 にしてから実行してください",
            EXIT_USAGE,
        )
    parser = build_parser()
    args = parser.parse_args(argv)
    from assistant.index.embeddings import EmbeddingError
    from assistant.index.store import IndexError_
    from assistant.knowledge import CorpusError
    from assistant.understand.data import ReaderDataError
    from assistant.validation import InputError, ServiceError

    try:
        return args.func(args)
    except InputError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except (ConfigError, CorpusError, IndexError_, EmbeddingError, ServiceError, ReaderDataError) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("中断しました", 130)
    except BrokenPipeError:  # output piped into a command that stopped reading (e.g. head)
        sys.stderr.close()
        return 0
    except OSError as exc:
        where = f"（{exc.filename}）" if exc.filename else ""
        return _fail(f"ファイルの読み書きに失敗しました{where}: {exc.strerror or exc}")


def run() -> None:
    """The `assistant` command: `main`, then leave without tearing the interpreter down.

    Freeing every module and object of a process that loaded Chroma took about 0.3 s after the answer
    was printed. The exit handlers still run (working copies removed, logs closed), database connections
    are closed, and stdout and stderr are flushed; while another thread works, or under a profiler, the
    interpreter exits as usual."""
    code = main()
    if threading.active_count() > 1 or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    store = sys.modules.get("assistant.dialogue.store")
    if store is not None:
        store.dispose_engines()
    atexit._run_exitfuncs()  # noqa: SLF001 - what interpreter exit would run, and nothing else
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):  # the reader stopped listening, or the stream was closed
        pass
    os._exit(code)


if __name__ == "__main__":
    run()
