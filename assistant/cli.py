"""Command-line interface: `assistant <command>` (see the machine interface contract)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
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
def cmd_info(args: argparse.Namespace) -> int:
    from importlib import metadata

    from assistant import __version__
    from assistant.index.store import index_status
    from assistant.knowledge import load_knowledge

    settings = load_settings()
    settings.ensure_dirs()
    packages = {}
    for name in ("chromadb", "sentence-transformers", "langchain", "langchain-core", "gradio", "bm25s", "SudachiPy", "torch", "ja-ginza"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    knowledge = load_knowledge(settings.corpus_dir)
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
        },
        "index": index_status(settings, knowledge),
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
    from filelock import FileLock

    from assistant.index.store import build_index
    from assistant.ingest.docstore import DocumentStore
    from assistant.ingest.limits import ReadLimits
    from assistant.knowledge import load_knowledge

    settings = load_settings()
    settings.ensure_dirs()
    store = DocumentStore(settings.documents_dir, settings.corpus_dir)
    limits = ReadLimits.from_settings(settings)
    results = []
    with FileLock(str(settings.home / ".documents.lock")):
        for raw in args.paths:
            path = Path(raw)
            if args.remove:
                results.append(store.remove(path))
            else:
                results.append(
                    store.ingest(
                        path,
                        kind=args.kind,
                        as_of=args.as_of,
                        title=args.title,
                        chunk_chars=settings.chunk_chars,
                        max_bytes=int(settings.max_file_mb * 1_000_000),
                        limits=limits,
                        official=args.official,
                        keep_original=args.keep_original,
                    )
                )
    changed = any(r.status in {"added", "updated", "removed"} for r in results)
    removed = any(r.status == "removed" for r in results)
    report = None
    if changed and not args.no_index:
        say = None if args.json else _progress_to_stderr
        report = build_index(settings, load_knowledge(settings.corpus_dir), progress=say)
    if removed and report is None:
        print(
            "注意: 削除した文書の本文は、索引を再構築するまで索引に残ります。`assistant index rebuild` を実行してください",
            file=sys.stderr,
        )
    if args.json:
        _print_json(
            {
                "results": [r.to_dict() for r in results],
                "index": report.__dict__ if report else None,
            }
        )
    else:
        labels = {"added": "追加", "updated": "更新", "unchanged": "変更なし", "removed": "削除", "error": "エラー", "not_found": "未登録"}
        for r in results:
            print(f"[{labels[r.status]}] {r.path}: {r.message}")
        if report:
            print(f"索引を再構築しました（{report.chunks} チャンク、{report.seconds:.1f} 秒）")
    return EXIT_FAILURE if any(r.status == "error" for r in results) else 0


def _print_index_status(status: dict[str, Any]) -> None:
    print(f"状態: {status['state']}  チャンク: {status.get('chunks')}  文書: {status.get('documents')}  構築: {status.get('built_at')}")
    for key, label in (("missing_files", "見つからないファイル"), ("damaged_files", "内容が変わったファイル")):
        for name in status.get(key) or []:
            print(f"  {label}: {name}")
    if status.get("error"):
        print(status["error"])


def cmd_index(args: argparse.Namespace) -> int:
    from assistant.index.store import build_index, index_status
    from assistant.knowledge import load_knowledge

    settings = load_settings()
    knowledge = load_knowledge(settings.corpus_dir)
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


def build_parser() -> argparse.ArgumentParser:
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


if __name__ == "__main__":
    sys.exit(main())
