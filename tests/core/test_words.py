"""Scripts written without spaces: word counts, quality rules and MinHash shingles see their
words (characters) instead of whole clauses, and English text is split exactly as before."""

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

from synthq.tasks.core.config import DedupConfig, IngestConfig, QualityConfig
from synthq.tasks.core import filters
from synthq.tasks.ingest.extract import extract_page
from synthq.tasks.core.filters.base import DocView
from synthq.tasks.ingest.minhash import normalize, sidecar_fits, sidecar_table, signatures
from synthq.tasks.ingest.raw import RawPage
from synthq.tasks.core.words import split_words

ZH = """如何养好酸面种
酸面种是一种由野生酵母和乳酸菌组成的活性培养物，不需要任何包装酵母就能让面包发起来。
每天用同等重量的面粉和水喂养一次，并把罐子放在温暖但避开阳光直射的地方。
健康的面种会在四到八个小时内体积翻倍，闻起来有一种令人愉快的酸味，有点像酸奶。
如果表面出现一层灰色的液体，把它倒掉就好：面种只是饿了，并没有死，需要更早地喂养。
全麦黑麦粉能加快这一过程，因为它比白面粉携带更多的野生微生物。
出远门之前，可以多加一些面粉让它变硬，然后放进冰箱，最多可以保存两个星期。
回来以后，在室温下连续喂养两三次，它的节奏就会恢复正常。"""

JA = """サワードウスターターの育て方
スターターは野生の酵母と乳酸菌からなる生きた培養物で、市販のイーストを使わずにパンを膨らませます。
毎日同じ重さの小麦粉と水を与え、直射日光の当たらない暖かい場所に瓶を置いてください。
元気なスターターは四時間から八時間で二倍に膨らみ、ヨーグルトのような心地よい酸味の香りがします。
表面に灰色の液体がたまったら捨ててください。死んだのではなく、お腹がすいているだけです。
ライ麦の全粒粉を使うと、白い小麦粉よりも多くの微生物を含むため、発酵が早く進みます。
長く家を空けるときは、粉を多めに加えて固くし、冷蔵庫で二週間まで保存できます。"""

TH = """วิธีเลี้ยงหัวเชื้อขนมปังเปรี้ยว
หัวเชื้อเป็นส่วนผสมที่มีชีวิตของยีสต์ธรรมชาติและแบคทีเรียที่ทำให้ขนมปังขึ้นฟูโดยไม่ต้องใช้ยีสต์สำเร็จรูป
ให้อาหารด้วยแป้งและน้ำในน้ำหนักเท่ากันวันละครั้ง และวางขวดไว้ในที่อุ่นแต่ไม่โดนแดดโดยตรง
หัวเชื้อที่แข็งแรงจะขยายตัวเป็นสองเท่าภายในสี่ถึงแปดชั่วโมง และมีกลิ่นเปรี้ยวอ่อนๆ คล้ายโยเกิร์ต
ถ้ามีของเหลวสีเทาลอยอยู่ด้านบน ให้เทออก หัวเชื้อแค่หิว ไม่ได้ตาย และต้องให้อาหารเร็วขึ้น
แป้งไรย์โฮลวีตช่วยให้หมักเร็วขึ้น เพราะมีจุลินทรีย์ธรรมชาติมากกว่าแป้งขาว"""

NOW = datetime(2026, 11, 26, tzinfo=timezone.utc)


def _keep(text: str):
    return extract_page(RawPage(url="https://x.example/a", source="t", fetch_time=NOW, text=text), IngestConfig(languages=[]))


def test_english_splits_on_whitespace_as_before():
    text = "Plain English, with punctuation; and   spaces.\nNew line."
    assert split_words(text) == text.split()


def test_unspaced_scripts_split_by_character_and_keep_spaced_words_whole():
    assert split_words("这是第二句，还有English words和2024年！") == [
        "这", "是", "第", "二", "句", "还", "有", "English", "words", "和", "2024", "年"
    ]
    # Thai vowel signs and tone marks stay on their letter
    assert split_words("ที่นี่") == ["ที่", "นี่"]


def test_articles_in_chinese_japanese_and_thai_are_kept():
    for text, language in ((ZH, "zh"), (JA, "ja"), (TH, "th")):
        doc, rej = _keep(text)
        assert rej is None, (language, rej)
        assert doc["language"] == language and doc["n_words"] > 200


def test_whitespace_words_would_have_rejected_them():
    """The same articles split on whitespace are a dozen "words": too short for min_words."""
    for text in (ZH, JA):
        assert len(text.split()) < QualityConfig().min_words <= len(split_words(text))


def test_repetition_rules_still_catch_repeated_chinese():
    spam = "\n".join(["限时特价，全场商品一律五折，欢迎光临本店选购。"] * 12 + ZH.split("\n")[1:3])
    reason, detail = filters.apply(spam, QualityConfig(), language="zh")
    assert reason.startswith("gopher_duplicate") or reason.startswith("gopher_top_ngram"), reason


def test_chinese_ngrams_are_counted_in_pairs_of_characters():
    view = DocView(ZH)
    assert view.gram_scale == 2 and view.unspaced_words > 200
    assert DocView(TH).gram_scale == 4 and DocView(SENTENCE := "Plain English text here.").gram_scale == 1, SENTENCE


def test_mean_word_length_ignores_mostly_unspaced_text_and_judges_the_rest():
    cfg = QualityConfig()
    assert filters.gopher.mean_word_length(DocView(ZH), cfg) is None
    long_words = " ".join(["incomprehensibilities"] * 60) + "文字"
    assert "mean word length" in filters.gopher.mean_word_length(DocView(long_words), cfg)


def test_short_lines_in_chinese_are_counted_in_characters_that_hold_words():
    """A 20-character Chinese sentence is a full line of prose, not a menu entry."""
    lines = [line[:20] for line in ZH.split("\n")[1:]]
    assert filters.lines.short_lines(DocView("\n".join(lines)), QualityConfig()) is None
    menu = "\n".join(["首页", "新闻", "体育", "财经", "科技", "登录", ZH.split("\n")[1]])
    assert "under 12 characters" in filters.lines.short_lines(DocView(menu), QualityConfig())


def test_thai_is_not_judged_on_terminal_punctuation():
    assert filters.lines.terminal_punctuation(DocView(TH), QualityConfig())  # no line ends in a mark
    assert filters.apply(TH, QualityConfig(), language="th") is None


def test_near_duplicate_chinese_texts_share_most_of_their_signature():
    cfg = DedupConfig()
    edited = ZH.replace("四到八个小时", "五到九个小时")
    other = JA
    sigs = signatures([ZH, edited, other], cfg)
    assert np.mean(sigs[0] == sigs[1]) > 0.8
    assert np.mean(sigs[0] == sigs[2]) < 0.1
    assert len(normalize(ZH)) == len([w for w in split_words(ZH.lower()) if w not in "，。：、"])


def test_sidecar_without_the_word_split_stamp_does_not_fit():
    cfg = DedupConfig()
    side = sidecar_table(["a"], signatures([ZH], cfg), cfg)
    assert sidecar_fits(side, cfg)
    old = side.replace_schema_metadata({b"shingle_words": str(cfg.shingle_words).encode()})
    assert not sidecar_fits(old, cfg)
    assert isinstance(old, pa.Table)
