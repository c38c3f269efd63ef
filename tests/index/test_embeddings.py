import numpy as np
import pytest

from assistant.index.embeddings import ChiveEmbedder


@pytest.fixture(scope="module")
def chive(assistant) -> ChiveEmbedder:  # noqa: ANN001
    return assistant.embedder


def test_static_sentence_transformer_gives_the_same_vectors(chive: ChiveEmbedder) -> None:
    texts = ["ひとり親家庭等医療費助成", "子ども医療費の助成に関する事務", "号ずれの修正は差替え", "xyz"]
    model = chive.to_sentence_transformer()
    expected = model.encode([chive.segment(t) for t in texts], normalize_embeddings=True, convert_to_numpy=True)
    ours = chive.encode(texts)
    assert np.allclose(ours[:3], expected[:3], atol=1e-5)


def test_normalised_variants_share_vectors(chive: ChiveEmbedder) -> None:
    a, b, c = chive.encode(["こども医療費", "子供医療費", "介護保険料"])
    assert float(a @ b) > 0.99
    assert float(a @ c) < float(a @ b)
    assert np.isclose(np.linalg.norm(a), 1.0, atol=1e-5)
