"""Dense sentence embeddings with sentence-transformers, offline.

Default: a static model built from the chiVe word vectors that the ja-ginza package ships
(no download): Sudachi segments the text, words are looked up by normalised form (compounds
fall back to their parts) and their vectors are mean-pooled, as a sentence-transformers
`StaticEmbedding` does.
Any configured local sentence-transformers directory (e.g. a ruri-v3 or multilingual-e5 copy)
replaces it without code changes.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from assistant.files import atomic_output
from assistant.index.arrays import mapped
from assistant.index.tokenizer import get_tokenizer

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

CHIVE_MODEL_ID = "chive-ja-ginza-5.3.0-static"
CACHE_FORMAT = "keyed-2"
CACHE_PARTS = ("keys", "rows", "vectors")
SEEN_WORDS_LIMIT = 500_000


class EmbeddingError(RuntimeError):
    """The configured embedding model cannot be loaded."""


def _ginza_vocab_dir() -> Path:
    try:
        import ja_ginza
    except ImportError as exc:
        raise EmbeddingError("ja-ginza パッケージがありません（既定の埋め込みモデルに必要です）") from exc
    candidates = sorted(Path(ja_ginza.__file__).parent.glob("ja_ginza-*/vocab"))
    if not candidates:
        raise EmbeddingError("ja-ginza の語彙ベクトルが見つかりません")
    return candidates[-1]


def chive_table() -> tuple[list[str], np.ndarray, np.ndarray]:
    """(words, their vector rows, the vector table) of the chiVe vectors ja-ginza ships."""
    from spacy.strings import StringStore
    from spacy.vectors import Vectors

    vocab_dir = _ginza_vocab_dir()
    vectors = Vectors()
    vectors.from_disk(vocab_dir)
    strings = StringStore().from_disk(vocab_dir / "strings.json")
    key2row = vectors.key2row
    words, rows = [], []
    for word in strings:
        row = key2row.get(strings[word], -1)
        if row >= 0:
            words.append(word)
            rows.append(row)
    return words, np.array(rows, dtype=np.int32), np.asarray(vectors.data, dtype=np.float32)


def word_key(word: str) -> int:
    """A stable 64-bit key of a word (the lookup stores keys, not the half a million words)."""
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


def chive_cache_files(cache_dir: Path) -> dict[str, Path]:
    """The lookup's arrays, one .npy file each (memory-mapped: the pages a process reads are shared
    by every worker instead of each holding its own 30 MB copy)."""
    return {part: cache_dir / f"{CHIVE_MODEL_ID}-{CACHE_FORMAT}.{part}.npy" for part in CACHE_PARTS}


def build_chive_cache(cache_dir: Path) -> None:
    """Extract the lookup once: sorted word keys, their rows, the vector table.

    Row 0 of the table is the zero vector ([UNK]); a word's row is its chiVe row + 1."""
    words, rows, vectors = chive_table()
    keys = np.fromiter((word_key(w) for w in words), dtype=np.uint64, count=len(words))
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order] + 1
    unique = np.concatenate([[True], keys[1:] != keys[:-1]])  # a key collision keeps the first word
    table = np.vstack([np.zeros((1, vectors.shape[1]), dtype=np.float32), vectors])
    cache_dir.mkdir(parents=True, exist_ok=True)
    arrays = {"keys": keys[unique], "rows": rows[unique].astype(np.int32), "vectors": table}
    files = chive_cache_files(cache_dir)
    for part in ("rows", "vectors", "keys"):  # keys last: the lookup counts as present once its keys are
        # A temporary file of its own: two workers starting together each write whole files (of the same content).
        with atomic_output(files[part]) as handle:
            np.save(handle, arrays[part])


def _load_chive_cache(cache_dir: Path) -> dict[str, np.ndarray]:
    files = chive_cache_files(cache_dir)
    if not all(path.is_file() for path in files.values()):
        build_chive_cache(cache_dir)
        for older in cache_dir.glob(f"{CHIVE_MODEL_ID}*.npz"):  # caches of earlier formats
            older.unlink(missing_ok=True)
    try:
        return {part: mapped(path) for part, path in files.items()}
    except ValueError:  # a file cut short (e.g. a full disk): extract again
        build_chive_cache(cache_dir)
        return {part: mapped(path) for part, path in files.items()}


class Embedder:
    """Embeds passages and queries; also usable as a LangChain `Embeddings`."""

    model_id: str
    dimension: int

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts, is_query=False).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.encode([text], is_query=True)[0].tolist()

    def encode(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        raise NotImplementedError


class ChiveEmbedder(Embedder):
    """chiVe mean-pooled word vectors.

    Encoding is the arithmetic of a sentence-transformers `StaticEmbedding` (mean of the word
    rows, then L2 normalisation) done directly with numpy, so answering does not pay the ~5 s
    import of torch and transformers; `to_sentence_transformer()` builds the equivalent
    sentence-transformers model (tests check both give the same vectors).
    """

    def __init__(self, cache_dir: Path) -> None:
        arrays = _load_chive_cache(cache_dir)
        self._keys, self._rows, self._weights = arrays["keys"], arrays["rows"], arrays["vectors"]
        self._seen: dict[str, int | None] = {}  # word → row, for the words this process has met
        self.model_id = CHIVE_MODEL_ID
        self.dimension = int(self._weights.shape[1])

    def row(self, word: str) -> int | None:
        """The vector row of a word, None when chiVe has no vector for it."""
        try:
            return self._seen[word]
        except KeyError:
            pass
        key = np.uint64(word_key(word))
        at = int(np.searchsorted(self._keys, key))
        found = int(self._rows[at]) if at < len(self._keys) and self._keys[at] == key else None
        if len(self._seen) < SEEN_WORDS_LIMIT:
            self._seen[word] = found
        return found

    def segment(self, text: str) -> str:
        """Words of the text that have a vector, space separated (compounds fall back to parts)."""
        return " ".join(self._words(get_tokenizer().morphemes(text)))

    def _words(self, morphemes: list[tuple[str, tuple[str, ...]]]) -> list[str]:
        words = []
        for form, parts in morphemes:
            if self.row(form) is not None:
                words.append(form)
            else:
                words.extend(p for p in parts if self.row(p) is not None)
        return words

    def rows_of(self, morphemes: list[tuple[str, tuple[str, ...]]]) -> list[int]:
        """Vector rows of analysed text (as `segment`, without tokenising again)."""
        return [self.row(w) for w in self._words(morphemes)]  # type: ignore[misc]

    def encode_morphemes(self, analysed: list[list[tuple[str, tuple[str, ...]]]]) -> np.ndarray:
        """Passage vectors of texts already analysed by the tokenizer (`morphemes`)."""
        return self._pool([self.rows_of(m) for m in analysed])

    def encode(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        return self._pool([self.rows_of(get_tokenizer().morphemes(text)) for text in texts])

    def _pool(self, row_lists: list[list[int]]) -> np.ndarray:
        vectors = np.zeros((len(row_lists), self.dimension), dtype=np.float32)
        for i, rows in enumerate(row_lists):
            if rows:
                vectors[i] = self._weights[rows].mean(axis=0)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
        vectors[~vectors.any(axis=1), 0] = 1e-6  # keep cosine defined for text without known words
        return vectors

    def to_sentence_transformer(self) -> "SentenceTransformer":
        """The same model as a sentence-transformers `StaticEmbedding` (input: `segment(text)`)."""
        from sentence_transformers import SentenceTransformer
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
        from tokenizers import Tokenizer
        from tokenizers.models import WordLevel
        from tokenizers.pre_tokenizers import WhitespaceSplit

        words, rows, _vectors = chive_table()
        vocab = {w: int(r) + 1 for w, r in zip(words, rows)}
        tokenizer = Tokenizer(WordLevel({"[UNK]": 0, **vocab}, unk_token="[UNK]"))
        tokenizer.pre_tokenizer = WhitespaceSplit()
        return SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_weights=np.array(self._weights))], device="cpu")


class LocalSentenceTransformerEmbedder(Embedder):
    def __init__(self, model_dir: Path, query_prefix: str = "", passage_prefix: str = "") -> None:
        from sentence_transformers import SentenceTransformer

        if not model_dir.is_dir():
            raise EmbeddingError(f"埋め込みモデルのフォルダが見つかりません: {model_dir}")
        try:
            self.model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
        except Exception as exc:
            raise EmbeddingError(f"埋め込みモデルを読み込めません: {model_dir}（{exc}）") from exc
        self.query_prefix, self.passage_prefix = query_prefix, passage_prefix
        self._lock = threading.Lock()
        digest = hashlib.sha1(str(model_dir.resolve()).encode()).hexdigest()[:8]
        self.model_id = f"local-{model_dir.name}-{digest}"
        self.dimension = int(self.model.get_sentence_embedding_dimension() or 0)

    def encode(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        prefix = self.query_prefix if is_query else self.passage_prefix
        # A Hugging Face fast tokenizer refuses a second thread while it encodes ("Already borrowed").
        with self._lock:
            vectors = self.model.encode(
                [prefix + t for t in texts], normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return vectors.astype(np.float32)


@functools.lru_cache(maxsize=4)
def _cached_embedder(model: str, cache_dir: str, query_prefix: str, passage_prefix: str) -> Embedder:
    if model == "chive":
        return ChiveEmbedder(Path(cache_dir))
    return LocalSentenceTransformerEmbedder(Path(model).expanduser(), query_prefix, passage_prefix)


def get_embedder(settings) -> Embedder:  # noqa: ANN001 - Settings, imported lazily to avoid a cycle
    return _cached_embedder(settings.embedding_model, str(settings.cache_dir), settings.query_prefix, settings.passage_prefix)
