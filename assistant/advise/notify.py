"""Notification-type advisor: 新規 / 変更 / 中止 / 差替え from the facts a user states.

Facts are read from the text (is there an existing notification? what changes?). When they do
not decide, the advisor returns no type and one precise clarifying question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.advise.matching import fold

NotificationCode = str  # "new" | "change" | "discontinue" | "replace"


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile("|".join(patterns))


# Patterns run on folded text (NFKC, no spaces, 子ども/ひとり親/障害 unified).
EXISTING_NO = _rx(
    r"まだ(届|情報連携|連携|出して|し(て)?いない|未)", r"未実施", r"一度も", r"初めて", r"はじめて", r"したこと(が)?ない",
    r"出したことはありません", r"実績(は)?(ゼロ|なし|無し|0)", r"(届出|届け出)(は|を)?(まだ|して(い)?ない|していません|出していません)",
    r"過去に(届出|届け出)(は|を)?(して|出して)いません", r"連携(は|を)?(まだ|して(い)?ない|していません)", r"新規に",
    r"(届け?出|連携|提出)(た|し)ことは?.{0,8}(ありません|ない)",
    r"(連携|届出|届け出)(は|を)?.{0,6}(行って|して|実施して|提出して|出して)(おりません|いません|いない|おらず)",
)
EXISTING_YES = _rx(
    r"届出済", r"届け出済", r"届出して(いる|います|いた|た)", r"届け出て(いる|います|いた)", r"届出している", r"届出してた",
    r"連携(中|して(いる|います))", r"既に(届|連携|承認)", r"すでに(届|連携|承認)", r"承認(済|を受け|され)", r"提出済",
    r"既存の届出", r"出してた", r"届出済み",
)
UNSURE = _rx(r"わかりません", r"分かりません", r"わからない", r"分からない", r"かな[…\.。？?]", r"不明", r"引き継ぎがな", r"記録がな")
START = _rx(
    r"(始め|開始し|導入し)(たい|ます|る予定)", r"開始(したい|します|予定)", r"新しく", r"新たに", r"今度から", r"から連携",
    r"連携(を)?(したい|やりたい|始)", r"照会(したい|できるようにしたい)",
)
TRANSFER = _rx(
    r"移管", r"所管(を|が).{0,20}(移|変わ)", r"(教育委員会|市長部局|首長部局|知事部局|執行機関|町長部局|区長部局)(から|へ|に).{0,15}(移|変わ)",
    r"名義(を|が).{0,10}(変|移)",
)
SCOPE_CHANGE = _rx(
    r"対象(者)?を.{0,25}(広げ|拡大|拡げ|変更|変え|追加|狭め|縮小)", r"対象(者)?に.{0,25}(加え|追加)", r"対象(者)?の(拡大|変更|追加|縮小)",
    r"(年齢|所得制限).{0,10}(引き上げ|引上げ|拡大|撤廃|変更)",
)
NORM_FORM = _rx(r"要綱から規則", r"要綱を規則", r"規則に格上げ", r"要綱から条例", r"要綱を条例", r"条例に格上げ", r"規則化", r"条例化")
UNSPECIFIED_CONTENT = _rx(r"(中身|内容)(が|も).{0,8}(少し)?変わる", r"(中身|内容)を.{0,6}(変える|変更する)")
INFO_TERMS = r"((関係|個人)情報|情報(?!連携|提供|ネットワーク)|項目)"
INFO_CHANGE = _rx(
    INFO_TERMS + r".{0,25}(追加|削除|外し|外す|外したい|加え|やめ|取れるように|増や|減ら)",
    r"(追加|削除)(する|したい)?.{0,6}" + INFO_TERMS, r"も照会(したい|できるように)", r"照会情報を(追加|削除)",
    r"(照会|提供を求める).{0,15}(追加|削除)", r"関係情報も.{0,15}(取得|照会|取り|取れ|連携)",
    r"項目を(削|減ら|外)", r"照会(する)?必要が(なくな|ない)",
)
CASE_CHANGE = _rx(
    r"事例(番号)?を?.{0,8}(追加|変更|加え)", r"事例(番号)?(が|を|も).{0,20}(変わ|変更|変え|整理し直|付け替え)", r"別の事例", r"事例番号の(追加|変更)", r"もう一つ事例", r"事例も追加")
STOP = _rx(
    r"廃止", r"中止", r"連携(自体)?を?やめ", r"連携(自体)?を?停止", r"(事業|制度|事務)(を|は|が)?.{0,12}終了", r"終了(します|しました|する)",
    r"取り下げ", r"取下げ", r"処理しない", r"(事務|事業|制度)(そのもの|自体)?(が|は)?.{0,10}なくな(る|ります|りました)", r"用途廃止",
)
MINOR = _rx(
    r"号ずれ", r"号ズレ", r"条ずれ", r"条ズレ", r"ずれ(まし|た|る)", r"ズレ", r"繰り?下げ", r"繰り?上げ", r"号(番号)?が(変わ|ずれ)",
    r"誤字", r"誤記", r"間違", r"誤り", r"書き損じ", r"(名称|題名|条例名|名前|事務名|規則名|要綱名)(が|を|だけ|のみ).{0,30}(変|改)",
    r"名称変更", r"全部改正",
)
UNCHANGED_CONTENT = _rx(r"(内容|中身|照会(項目|情報)|対象者).{0,20}(変わりません|変更(は)?(なし|ない|ありません)|そのまま|同じ)", r"ほかに何も変わりません")
NOTIFICATION_WORDS = _rx(r"届", r"差し?替", r"手続")
# Asking which type to file (as opposed to a general question that mentions 届出).
WHICH_TYPE = _rx(
    r"何届", r"どの届", r"届出の種類", r"何の届", r"何を出", r"どれを出", r"届出は何", r"(変更|差替え?|差し替え|新規|中止)(ですか|でいい|で足り|届)",
    r"差し?替え?(で|って)", r"届出(は|を)?.{0,6}(要|い)ります", r"何が要", r"直し方", r"どう(なり|すれば|したら)",
)

@dataclass
class NotificationAdvice:
    notification_type: NotificationCode | None
    reasons: list[str] = field(default_factory=list)
    facts: dict[str, bool | None] = field(default_factory=dict)
    clarifying_question: str | None = None
    uncertain: bool = False
    consult_ppc: bool = False

    @property
    def needs_clarification(self) -> bool:
        return self.notification_type is None and self.clarifying_question is not None


def is_notification_question(text: str) -> bool:
    folded = fold(text)
    if not NOTIFICATION_WORDS.search(folded) and not any(p.search(folded) for p in (STOP, MINOR, INFO_CHANGE, START)):
        return False
    events = [STOP, MINOR, INFO_CHANGE, CASE_CHANGE, TRANSFER, SCOPE_CHANGE, NORM_FORM, EXISTING_NO, START]
    return bool(WHICH_TYPE.search(folded) or any(p.search(folded) for p in events))


# Clauses that say something does NOT change (「事例番号に変更はありません」) must not count as changes.
_NEGATED_CLAUSE = re.compile(r"変更(は|が)?(ありません|ない|なし)|変わりません|変わらない|そのまま|同じ(です|で)|これまでどおり")


def _affirmed_text(folded: str) -> str:
    clauses = re.split(r"(?<=[。、,，\n])", folded)
    return "".join(c for c in clauses if not _NEGATED_CLAUSE.search(c))


def advise_notification(text: str) -> NotificationAdvice:
    folded = fold(text)
    affirmed = _affirmed_text(folded)
    existing: bool | None = None
    if EXISTING_NO.search(folded):
        existing = False
    elif EXISTING_YES.search(folded):
        existing = True
    facts: dict[str, bool | None] = {
        "existing": existing,
        "transfer": bool(TRANSFER.search(folded)),
        "scope_change": bool(SCOPE_CHANGE.search(folded)),
        "norm_form": bool(NORM_FORM.search(folded)),
        "info_change": bool(INFO_CHANGE.search(affirmed)),
        "case_change": bool(CASE_CHANGE.search(affirmed)),
        "stop": bool(STOP.search(folded)),
        "minor": bool(MINOR.search(folded)),
        "unchanged_content": bool(UNCHANGED_CONTENT.search(folded)),
        "start": bool(START.search(folded)),
        "unsure": bool(UNSURE.search(folded)),
    }
    if facts["transfer"] and re.search(r"処理しな(く|い)", folded):
        return NotificationAdvice(
            "discontinue",
            [
                "届出済みの事務を処理している機関が、その事務を処理しなくなるため、その機関は中止の届出に当たります",
                "【要確認】事務を引き継ぐ機関が情報連携を行うには、その機関による届出（新規と考えられます）が別に必要になると考えられます",
            ],
            facts,
            uncertain=True,
            consult_ppc=True,
        )
    if facts["transfer"]:
        return NotificationAdvice(
            None,
            ["事務を処理する執行機関が替わる場合、元の機関は当該事務を処理しなくなるため中止の届出、新しい機関は新規の届出が必要になると考えられますが、取扱いは確認できていません（要確認）"],
            facts,
            "移管後の事務の内容・対象者・照会する情報は移管前と同じですか。また、移管の時期はいつですか。取扱いは個人情報保護委員会事務局へ事前に確認されることをお勧めします。",
            uncertain=True,
            consult_ppc=True,
        )
    if facts["scope_change"] and not facts["info_change"] and not facts["case_change"]:
        return NotificationAdvice(
            None,
            ["対象者の範囲を変えると、当てはまる事例や要件（趣旨・目的の同一性）の判断が変わる可能性があり、どの届出に当たるかは確認できていません（要確認）"],
            facts,
            "対象者の変更によって、当てはまる事例（事例番号）や照会する特定個人情報は変わりますか。判断に迷う場合は個人情報保護委員会事務局への事前相談をお勧めします。",
            uncertain=True,
            consult_ppc=True,
        )
    if facts["norm_form"] and not facts["info_change"] and not facts["case_change"]:
        return NotificationAdvice(
            None,
            ["根拠規範の形式（要綱→規則など）が変わるだけで事例・照会する情報に影響しなければ差替えで足りる可能性がありますが、確認できていません（要確認）"],
            facts,
            "根拠規範の形式が変わることで、事務の内容・対象者・照会する特定個人情報・事例番号のいずれかは変わりますか。",
            uncertain=True,
            consult_ppc=True,
        )
    if facts["stop"] and not facts["info_change"]:
        return NotificationAdvice("discontinue", ["届出済みの事務を処理しなくなる（廃止・連携の終了）ため、中止の届出に当たります"], facts)
    if facts["info_change"] or facts["case_change"]:
        what = "事例" if facts["case_change"] and not facts["info_change"] else "提供を求める特定個人情報"
        return NotificationAdvice("change", [f"既存の届出の記載事項のうち{what}が変わる（追加・削除を含む）ため、変更の届出に当たります"], facts)
    if facts["minor"]:
        return NotificationAdvice(
            "replace",
            ["事例や照会する情報は変わらず、名称・号ずれ・誤記などの軽微な修正であるため、届出書の差替え（随時受付）に当たります"],
            facts,
        )
    if UNSPECIFIED_CONTENT.search(folded) and not facts["unchanged_content"]:
        return NotificationAdvice(
            None,
            ["何が変わるかによって、変更の届出と差替えのどちらに当たるかが分かれます"],
            facts,
            "改正で変わるのは、事例（事例番号）・照会する特定個人情報・名称や条番号のどれですか。",
        )
    if existing is False and not facts["unsure"]:
        return NotificationAdvice("new", ["現在情報連携を行っていない独自利用事務で連携を始めるため、新規の届出に当たります"], facts)
    if facts["start"] and existing is None and not facts["unsure"] and re.search(r"始め|開始し|導入し|新しく|新たに|今度から", folded):
        return NotificationAdvice("new", ["これから情報連携を始める事務であるため、新規の届出に当たります（既に届出済みの場合は別です）"], facts)
    if existing is True:
        return NotificationAdvice(
            None,
            ["届出済みの事務では、何が変わるかで変更・中止・差替えのいずれかに分かれます"],
            facts,
            "今回変わるのは何ですか（事例・照会する特定個人情報の追加や削除／名称や号番号・誤記の修正／事務の廃止や連携の終了）。",
        )
    return NotificationAdvice(
        None,
        ["届出の種類は、既存の届出があるかどうかと、何が変わるかで決まります"],
        facts,
        "この事務について、既に個人情報保護委員会へ情報連携の届出をしていますか（届出済みの場合は、今回何が変わるかも教えてください）。",
    )
