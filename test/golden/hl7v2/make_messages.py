#!/usr/bin/env python3
"""Writes the golden HL7 v2 inputs of this folder (synthetic people, real encodings).

Run: python3 make_messages.py. Each file name ends in its character set: .iso2022jp (MSH-18 `~ISO IR87`),
.iso2022jp-nospace (`~ISOIR87`, MSH-20 `ISO2022-1994`), .utf8 (`UNICODE UTF-8`), .sjis (`SHIFT_JIS`).
The expected FHIR output of each is the .json file beside it (see test/golden/hl7v2.test.ts).
"""
import pathlib

here = pathlib.Path(__file__).parent

CHARSETS = {
    "iso2022jp": ("~ISO IR87", "ISO 2022-1994", "iso2022_jp_ext"),
    "iso2022jp-nospace": ("~ISOIR87", "ISO2022-1994", "iso2022_jp_ext"),
    "utf8": ("UNICODE UTF-8", "", "utf-8"),
    "sjis": ("SHIFT_JIS", "", "cp932"),
}


def fields(n, **kv):
    a = [""] * n
    for k, v in kv.items():
        a[int(k[1:]) - 1] = v
    return a


def seg(name, fs):
    return name + "|" + "|".join(fs)


def msh(ctrl, typ, ts, charset):
    c18, c20, _ = CHARSETS[charset]
    return "MSH|" + "|".join(["^~\\&", "MIDORI-EMR", "MIDORI", "GW", "RENKEI", ts, "", typ, ctrl, "P", "2.5",
                              "", "", "", "", "", c18, "", c20])


YAMADA = dict(f1="0001", f3="0000120034^^^^PI", f5="山田^太郎^^^^^L^I~ヤマダ^タロウ^^^^^L^P", f7="19350710", f8="M",
              f11="^^^^3300063^JPN^H^埼玉県さいたま市浦和区高砂三丁目１番地", f13="^PRN^PH^^^^^^^^^048-000-1111")
SATO = dict(f1="0001", f3="0000130077^^^^PI", f5="佐藤^花子^^^^^L^I~サトウ^ハナコ^^^^^L^P", f7="19420301", f8="F",
            f11="^^^^3300064^JPN^H^埼玉県さいたま市浦和区岸町二丁目３番地", f13="^PRN^PH^^^^^^^^^048-000-2222")


def pid(**over):
    return seg("PID", fields(30, **{**YAMADA, **over}))


DOC = "305^医師^花子^^^^^^^L^^^^^I"


def rde_group(orc1, order, rp, drug, dose, unit, qty, usage, days, kind, route="PO^口^HL70162", site="", daily="", ts="20261105101500"):
    return [seg("ORC", fields(12, f1=orc1, f2=order, f4=rp, f9=ts, f12=DOC)),
            seg("RXE", fields(27, f2=drug, f3=dose, f5=unit, f10=qty, f11=unit, f15="RX-" + order, f19=daily,
                              f21="OHP^外来処方^MR9P", f27=kind)),
            seg("TQ1", fields(7, f1="1", f3=usage, f6=(f"{days}^D&日&ISO+" if days else ""), f7=ts[:8])),
            seg("RXR", [route, site])]


MG = dict(drug="105271807^酸化マグネシウム錠３３０ｍｇ^HOT9", dose="2", unit="TAB^錠^MR9P", qty="56",
          usage="1013044400000000&内服・経口・１日３回朝昼夕食後&JAMISDP01", days="28", kind="21^内服^JHSP0003", daily="6^TAB&錠&MR9P")
PATCH = dict(drug="620000520^ケトプロフェンテープ２０ｍｇ^YJ", dose="1", unit="SHT^枚^MR9P", qty="14",
             usage="2000000000000000&外用・貼付・１日１回&JAMISDP01", days="", kind="23^外用^JHSP0003",
             route="AP^塗布^HL70162", site="77L^左手^JAMISDP01")

MESSAGES = {}


def add(name, charset, segments):
    MESSAGES[f"{name}.{charset}.hl7"] = ("\r".join(segments) + "\r", CHARSETS[charset][2])


# ADT
add("adt-a08-patient", "iso2022jp", [
    msh("MD2026110400001", "ADT^A08^ADT_A01", "20261104120000", "iso2022jp"), seg("EVN", ["", "20261104120000"]), pid(),
    seg("PV1", ["0001", "O"]),
    seg("OBX", ["1", "NM", "9N001000000000001^身長^JC10", "", "162.5", "cm^cm^ISO+", "", "", "", "", "F"]),
    seg("OBX", ["2", "NM", "9N006000000000001^体重^JC10", "", "51.2", "kg^kg^ISO+", "", "", "", "", "F"]),
    seg("AL1", ["1", "DA", "1^ペニシリン系^99XYZ", "SV"])])
add("adt-a01-admission", "iso2022jp-nospace", [
    msh("MD2026111000001", "ADT^A01^ADT_A01", "20261110090000", "iso2022jp-nospace"), seg("EVN", ["A01", "20261110090000"]),
    pid(**SATO), seg("PV1", fields(45, f1="0001", f2="I", f3="3W^301^1", f19="V20261110001", f44="20261110090000"))])
add("adt-a03-discharge", "iso2022jp", [
    msh("MD2026112000001", "ADT^A03^ADT_A03", "20261120150000", "iso2022jp"), seg("EVN", ["A03", "20261120150000"]),
    pid(**SATO), seg("PV1", fields(45, f1="0001", f2="I", f3="3W^301^1", f19="V20261110001", f44="20261110090000", f45="20261120150000"))])
add("adt-a04-outpatient", "utf8", [
    msh("MD2026111200002", "ADT^A04^ADT_A01", "20261112093000", "utf8"), seg("EVN", ["A04", "20261112093000"]),
    pid(), seg("PV1", fields(44, f1="0001", f2="O", f19="V20261112001", f44="20261112093000"))])
add("adt-a08-ibm-kanji", "sjis", [
    msh("MD2026111300001", "ADT^A08^ADT_A01", "20261113100000", "sjis"), seg("EVN", ["", "20261113100000"]),
    pid(f3="0000140001^^^^PI", f5="髙橋^一郎^^^^^L^I~タカハシ^イチロウ^^^^^L^P", f7="19400115", f8="M",
        f11="^^^^1000001^JPN^H^東京都千代田区千代田１－１", f13="^PRN^PH^^^^^^^^^03-0000-0003")])
add("adt-a08-escapes", "utf8", [
    msh("MD2026111300002", "ADT^A08^ADT_A01", "20261113110000", "utf8"), seg("EVN", ["", "20261113110000"]), pid(),
    seg("AL1", ["1", "DA", "3^セフェム系\\T\\ペニシリン系^99XYZ", "MO", "発疹\\.br\\かゆみ \\F\\ \\S\\ \\R\\ \\E\\"])])
add("adt-a08-halfwidth-kana", "iso2022jp", [
    msh("MD2026111300003", "ADT^A08^ADT_A01", "20261113120000", "iso2022jp"), seg("EVN", ["", "20261113120000"]),
    pid(f5="山田^太郎^^^^^L^I~ﾔﾏﾀﾞ^ﾀﾛｳ^^^^^L^P")])
add("adt-a08-contacts-allergies", "utf8", [
    msh("MD2026111300004", "ADT^A08^ADT_A01", "20261113130000", "utf8"), seg("EVN", ["", "20261113130000"]),
    pid(**{**SATO, "f13": "^PRN^PH^^^^^^^^^048-000-2222~^ORN^CP^^^^^^^^^090-0000-0001", "f14": "^WPN^PH^^^^^^^^^03-0000-0002"}),
    seg("AL1", ["1", "DA", "1^ペニシリン系^99XYZ", "SV", "発疹", "20200401"]),
    seg("AL1", ["2", "FA", "2^そば^99XYZ", "MO", "", "20150610"])])
add("adt-a08-delete-fields", "iso2022jp-nospace", [
    msh("MD2026111300005", "ADT^A08^ADT_A01", "20261113140000", "iso2022jp-nospace"), seg("EVN", ["", "20261113140000"]),
    pid(f11='""', f13='""')])
add("adt-a08-lab-and-death", "utf8", [
    msh("MD2026113000001", "ADT^A08^ADT_A01", "20261130180000", "utf8"), seg("EVN", ["", "20261130180000"]),
    pid(f29="20261130170500", f30="Y"),
    seg("OBX", ["1", "NM", "3B035000002327201^AST^JC10", "", "25", "U/L^U/L^ISO+", "10-40", "N", "", "", "F", "", "", "20261125090000"])])

# RDE^O11
add("rde-o11-two-drugs", "iso2022jp", [msh("MD2026110500001", "RDE^O11^RDE_O11", "20261105101530", "iso2022jp"), pid(),
    seg("PV1", ["0001", "O"]), *rde_group("NW", "A-501", "501_01", **MG), *rde_group("NW", "A-502", "501_02", **PATCH)])
add("rde-o11-one-drug", "utf8", [msh("MD2026110500002", "RDE^O11^RDE_O11", "20261105101530", "utf8"), pid(),
    seg("PV1", ["0001", "O"]), *rde_group("NW", "A-501", "501_01", **MG)])
add("rde-o11-discontinue", "iso2022jp", [msh("MD2026111200001", "RDE^O11^RDE_O11", "20261112090000", "iso2022jp"), pid(),
    seg("PV1", ["0001", "O"]), *rde_group("DC", "A-501", "501_01", **MG)])
add("rde-o11-cancel", "iso2022jp-nospace", [msh("MD2026110600001", "RDE^O11^RDE_O11", "20261106080000", "iso2022jp-nospace"), pid(),
    seg("PV1", ["0001", "O"]), *rde_group("CA", "A-502", "501_02", **PATCH)])
add("rde-o11-change", "iso2022jp", [msh("MD2026110800001", "RDE^O11^RDE_O11", "20261108100000", "iso2022jp"), pid(),
    seg("PV1", ["0001", "O"]), *rde_group("XO", "A-501", "501_01", **{**MG, "dose": "1", "qty": "28", "daily": "3^TAB&錠&MR9P",
                                                                      "usage": "1013044400000000&内服・経口・１日３回朝昼夕食後&JAMISDP01"}, ts="20261108095000")])
add("rde-o11-as-needed", "sjis", [msh("MD2026110900001", "RDE^O11^RDE_O11", "20261109110000", "sjis"), pid(**SATO),
    seg("PV1", ["0001", "O"]), *rde_group("NW", "B-701", "701_01", drug="1006325010101^ロキソプロフェンナトリウム錠６０ｍｇ^HOT", dose="1",
                                          unit="TAB^錠^MR9P", qty="10", usage="1050110020000000&内服・経口・疼痛時&JAMISDP01", days="10",
                                          kind="22^頓用^JHSP0003", ts="20261109105000")])
add("rde-o11-three-drugs", "utf8", [msh("MD2026111400001", "RDE^O11^RDE_O11", "20261114090000", "utf8"), pid(**SATO),
    seg("PV1", ["0001", "O"]),
    *rde_group("NW", "B-801", "801_01", drug="1124017^アムロジピン錠５ｍｇ^HOT", dose="1", unit="TAB^錠^MR9P", qty="30",
               usage="1012040400000000&内服・経口・１日１回朝食後&JAMISDP01", days="30", kind="21^内服^JHSP0003", daily="1^TAB&錠&MR9P", ts="20261114085000"),
    *rde_group("NW", "B-802", "801_01", drug="105271807^酸化マグネシウム錠３３０ｍｇ^HOT9", dose="1", unit="TAB^錠^MR9P", qty="30",
               usage="1012040400000000&内服・経口・１日１回朝食後&JAMISDP01", days="30", kind="21^内服^JHSP0003", ts="20261114085000"),
    *rde_group("NW", "B-803", "801_02", drug="620000520^ケトプロフェンテープ２０ｍｇ^YJ", dose="1", unit="SHT^枚^MR9P", qty="7",
               usage="2000000000000000&外用・貼付・１日１回&JAMISDP01", days="7", kind="23^外用^JHSP0003", route="AP^塗布^HL70162",
               site="78R^右膝^JAMISDP01", ts="20261114085000")])
add("rde-o11-external-site", "iso2022jp", [msh("MD2026111500001", "RDE^O11^RDE_O11", "20261115100000", "iso2022jp"), pid(),
    seg("PV1", ["0001", "O"]), *rde_group("NW", "A-601", "601_01", **PATCH, ts="20261115095000")])

# OUL^R22
SPM = lambda sid, typ, ts: seg("SPM", fields(17, f1="1", f2=sid, f4=typ, f17=ts))
OBR = lambda placer, filler, svc, ts, reported: seg("OBR", fields(25, f1="1", f2=placer, f3=filler, f4=svc, f7=ts, f16=DOC, f22=reported, f25="F"))
OBX = lambda n, typ, code, value, unit, rng, flag, status="F": seg("OBX", fields(11, f1=n, f2=typ, f3=code, f5=value, f6=unit, f7=rng, f8=flag, f11=status))
add("oul-r22-chemistry", "iso2022jp", [msh("LB2026111500001", "OUL^R22^OUL_R22", "20261115120000", "iso2022jp"), pid(), seg("PV1", ["0001", "O"]),
    SPM("S-001", "023^血清^JC10", "20261115083000"), OBR("ORD-1001", "LAB-1001", "0000^生化学^99LAB", "20261115083000", "20261115120000"),
    OBX("1", "NM", "3B035000002327201^AST^JC10", "25", "U/L^U/L^ISO+", "10-40", "N"),
    OBX("2", "NM", "3B045000002327201^ALT^JC10", "52", "U/L^U/L^ISO+", "5-45", "H"),
    OBX("3", "NM", "3D010000001926101^グルコース^JC10", "68", "mg/dL^mg/dL^ISO+", "70-109", "L")])
add("oul-r22-value-types", "utf8", [msh("LB2026111600001", "OUL^R22^OUL_R22", "20261116120000", "utf8"), pid(**SATO), seg("PV1", ["0001", "O"]),
    SPM("S-002", "004^尿^JC10", "20261116081500"), OBR("ORD-1002", "LAB-1002", "0001^尿検査^99LAB", "20261116081500", "20261116113000"),
    OBX("1", "CWE", "1A020000000190111^尿蛋白^JC10", "NEG^陰性^99LAB", "", "", ""),
    OBX("2", "SN", "5C070000002306201^CRP^JC10", "<^0.1", "mg/dL^mg/dL^ISO+", "<0.3", ""),
    OBX("3", "ST", "1A990000000000000^所見^JC10", "特記すべき所見なし", "", "", ""),
    OBX("4", "NM", "3H015000002327101^ナトリウム^JC10", "139", "mmol/L^mmol/L^ISO+", "135-145", "N", "C")])
add("oul-r22-two-specimens", "sjis", [msh("LB2026111700001", "OUL^R22^OUL_R22", "20261117150000", "sjis"), pid(), seg("PV1", ["0001", "O"]),
    SPM("S-003", "023^血清^JC10", "20261117090000"), OBR("ORD-1003", "LAB-1003", "0000^生化学^99LAB", "20261117090000", "20261117150000"),
    OBX("1", "NM", "3C015000002327101^クレアチニン^JC10", "0.92", "mg/dL^mg/dL^ISO+", "0.46-0.79", "H"),
    SPM("S-004", "019^全血^JC10", "20261117090500"), OBR("ORD-1004", "LAB-1004", "0002^血算^99LAB", "20261117090500", "20261117150000"),
    OBX("1", "NM", "2A990000001930101^白血球数^JC10", "5.4", "10*3/uL^10*3/uL^ISO+", "3.3-8.6", "N")])

# PPR^ZD1
PRB = lambda **kv: seg("PRB", fields(17, **kv))
ZPR = seg("ZPR", ["", "", "N"])
add("ppr-zd1-diagnoses", "iso2022jp", [msh("DX2026110100001", "PPR^ZD1^PPR_ZD1", "20261101100000", "iso2022jp"), pid(), seg("PV1", ["0001", "O"]),
    PRB(f1="AD", f2="20261101", f3="20054876^急性上気道炎^MDCDX2", f4="P-0001", f7="20261101", f13="C", f14="A", f16="20261030"), ZPR,
    PRB(f1="AD", f2="20261101", f3="8846189^肺炎^MDCDX2", f4="P-0002", f7="20261101", f13="P", f14="A"), ZPR])
add("ppr-zd1-resolved", "utf8", [msh("DX2026112000001", "PPR^ZD1^PPR_ZD1", "20261120100000", "utf8"), pid(), seg("PV1", ["0001", "O"]),
    PRB(f1="UP", f2="20261120", f3="20054876^急性上気道炎^MDCDX2", f4="P-0001", f7="20261101", f9="20261120", f13="C", f14="R", f16="20261030")])
add("ppr-zd1-delete", "iso2022jp-nospace", [msh("DX2026112100001", "PPR^ZD1^PPR_ZD1", "20261121100000", "iso2022jp-nospace"), pid(), seg("PV1", ["0001", "O"]),
    PRB(f1="DE", f2="20261121", f3="8846189^肺炎^MDCDX2", f4="P-0002", f7="20261101")])
add("ppr-zd1-icd10", "sjis", [msh("DX2026110200001", "PPR^ZD1^PPR_ZD1", "20261102100000", "sjis"), pid(**SATO), seg("PV1", ["0001", "O"]),
    PRB(f1="AD", f2="20261102", f3="I10^本態性（原発性＜一次性＞）高血圧（症）^I10", f4="P-0101", f7="20200415", f13="C", f14="A", f16="20200401"),
    PRB(f1="AD", f2="20261102", f3="E119^２型糖尿病・糖尿病性合併症なし^I10", f4="P-0102", f7="20180910", f13="C", f14="A")])

for name, (text, codec) in MESSAGES.items():
    (here / name).write_bytes(text.encode(codec))
print("wrote", len(MESSAGES), "messages")
