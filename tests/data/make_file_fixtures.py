#!/usr/bin/env python3
"""Writes the CSV and X12 fixtures under tests/data/csv/ and tests/data/x12/.

The fixtures are checked in; this script documents how they were made (exact bytes: BOMs,
CRLF, Windows-1252, X12 segment counts) and regenerates them. All data is fake.
Run from anywhere: python3 tests/data/make_file_fixtures.py
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CSV = os.path.join(HERE, "csv")
X12 = os.path.join(HERE, "x12")


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# ----------------------------------------------------------------------------------------
# CSV

def csv_fixtures():
    # UTF-8, LF, quoted commas, doubled quotes, a quoted newline (row 3 spans lines 4-5).
    write(CSV, "patients.csv",
          "PatientId,MRN,LastName,FirstName,MiddleName,DOB,Sex,Address1,City,State,Zip,Phone,Email,PrimaryInsurance\n"
          "1001,MRN0001001,DOE,JANE,Q,03/14/1980,F,\"123 Main St, Apt 4\",Springfield,IL,62701,(217) 555-0101,jane.doe@example.com,Acme Health PPO\n"
          "1002,MRN0001002,O'BRIEN,PATRICK,,1975-07-02,M,\"45 \"\"Old\"\" Mill Rd\",Shelbyville,IL,62565,217-555-0102,,Medicare Part B\n"
          "1003,MRN0001003,GARCÍA,JOSÉ,,12/01/1990,M,\"77 Elm St\nUnit 2\",Capital City,IL,62702,,jose@example.com,\n"
          "1004,MRN0001004,Müller,Jürgen,,01/01/1950,M,9 Lindenstraße,Springfield,IL,62703,,,\"Blue Cross \"\"Gold\"\", PPO\"\n")

    # UTF-8 with BOM, CRLF (also inside a quoted field), a blank line, no final CRLF.
    write(CSV, "appointments.csv",
          "\ufeffAppointmentId,PatientId,ProviderId,Resource,StartDateTime,StopDateTime,LengthMinutes,Type,Status,Location,Notes\r\n"
          "A-20240102-0001,1001,P100,Room 1,2024-01-02T09:00:00,2024-01-02T09:30:00,30,Follow-up,Scheduled,Main Clinic,\r\n"
          "A-20240102-0002,1002,P101,Room 2,2024-01-02T09:30:00,2024-01-02T10:15:00,45,New Patient,Confirmed,Main Clinic,\"Pt requests interpreter, Spanish\"\r\n"
          "\r\n"
          "A-20240102-0003,1003,P100,Room 1,2024-01-02T10:30:00,2024-01-02T10:45:00,15,\"Lab, fasting\",Cancelled,\"North Office, Suite 200\",\"Said \"\"call me back\"\"\r\nre: time\"")

    # Semicolon-delimited (European export), decimal commas.
    write(CSV, "charges.csv",
          "ChargeId;PatientId;EncounterId;ServiceDate;CPT;Modifier1;ICD10_1;ICD10_2;Units;Amount;RenderingNPI\n"
          "C0001;1001;E5001;01/02/2024;99213;;E11.9;I10;1;125,00;1234567893\n"
          "C0002;1002;E5002;01/02/2024;99204;25;Z00.00;;1;\"210,50\";1234567893\n"
          "C0003;1003;E5003;01/03/2024;36415;;E78.5;;1;15,00;1234567894\n")

    # Tab-delimited.
    write(CSV, "providers.csv",
          "ProviderId\tNPI\tLastName\tFirstName\tCredentials\tSpecialty\tTaxonomy\tActive\n"
          "P100\t1234567893\tSMITH\tALICE\tMD\tFamily Medicine\t207Q00000X\tY\n"
          "P101\t1234567894\tNGUYEN\tBAO\t\"DO, FACP\"\tInternal Medicine\t207R00000X\tY\n"
          "P102\t1234567895\tOKAFOR\tCHIDI\tNP\t\t363L00000X\tN\n")

    # Pipe-delimited with padding around values (for the trimming policy), a quoted value
    # with inner padding.
    write(CSV, "inventory.csv",
          "ItemId | Description | Lot | ExpirationDate | QuantityOnHand | Unit | Location\n"
          "INV-001 | Influenza vaccine, quadrivalent | L1234 | 2025-06-30 | 40 | dose | Fridge A\n"
          "INV-002 | \"  Gauze 4x4 | sterile  \" | G77 | 2027-01-31 | 500 | each | Supply B\n"
          "   \n"
          "INV-003 | Lidocaine 1% | LD9 | 2026-03-15 | 12 | vial | Cabinet C\n")

    # Windows-1252: Müller (0xFC), Doña (0xF1), Renée (0xE9), euro sign (0x80), smart
    # quotes (0x93 0x94), en dash (0x96). CRLF.
    write(CSV, "patients_1252.csv",
          "PatientId,LastName,FirstName,Note\r\n".encode("cp1252") +
          "2001,Müller,Jürgen,Copay 20€\r\n".encode("cp1252") +
          "2002,Doña,Renée,\u201cVIP\u201d \u2013 call first\r\n".encode("cp1252"))

    # Lone CR line endings (classic Mac export).
    write(CSV, "lone_cr.csv", "Id,Name\r1,ALPHA\r2,\"BRA\rVO\"\r3,CHARLIE\r")

    # --- broken inputs ---
    # Row 2 (line 3) has 5 fields, row 3 (line 4) has 3; rows 1 and 4 are fine.
    write(CSV, "ragged.csv",
          "PatientId,LastName,FirstName,DOB\n"
          "1001,DOE,JANE,03/14/1980\n"
          "1002,ROE,RICHARD,07/02/1975,EXTRA\n"
          "1003,POE,EDGAR\n"
          "1004,LOE,LINDA,01/01/1990\n")

    # The quoted Address of row 2 (line 3) never closes.
    write(CSV, "unterminated_quote.csv",
          "PatientId,LastName,Address\n"
          "1001,DOE,\"1 Main St\"\n"
          "1002,ROE,\"2 Oak Ave\n"
          "1003,POE,3 Elm St\n")

    # Row 2 (line 3) has 0xC3 0x28 (bad continuation), row 3 has a lone 0xFC (1252 byte in
    # a UTF-8 file); rows 1 and 4 are fine.
    write(CSV, "invalid_utf8.csv",
          b"PatientId,LastName\n"
          b"1001,DOE\n"
          b"1002,GARC\xc3\x28A\n"
          b"1003,M\xfcLLER\n"
          b"1004,O'NEIL\n")

    # A quote inside an unquoted field (row 1), text after a closing quote (row 2), then a
    # good row.
    write(CSV, "quote_errors.csv",
          "Id,Height,Name\n"
          "1,5'10\",DOE\n"
          "2,\"6'1\"x,ROE\n"
          "3,\"5'4\",POE\n")

    write(CSV, "duplicate_header.csv", "PatientId,LastName,FirstName,LastName\n1,A,B,C\n")
    write(CSV, "empty_header.csv", "PatientId,,FirstName\n1,A,B\n")
    write(CSV, "utf16.csv", "Id,Name\r\n1,A\r\n".encode("utf-16"))
    write(CSV, "blank_only.csv", "\n\r\n\n")


# ----------------------------------------------------------------------------------------
# X12

def isa(ctrl, e="*", rep="^", comp=":", sender="SUBMITTER01", receiver="RECEIVER01",
        date="240102", time="1200"):
    fields = ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", sender.ljust(15), "ZZ",
              receiver.ljust(15), date, time, rep, "00501", ctrl, "0", "P", comp]
    s = e.join(fields)
    assert len(s) == 105, len(s)
    return s


class Interchange:
    """Builds an interchange from segment element lists; fills in SE/GE/IEA counts."""

    def __init__(self, ctrl, e="*", rep="^", comp=":", term="~", brk="\n", **isa_kw):
        self.ctrl, self.e, self.rep, self.comp, self.term, self.brk = ctrl, e, rep, comp, term, brk
        self.segs = [isa(ctrl, e, rep, comp, **isa_kw)]
        self.groups = 0
        self.sets = 0
        self.count = 0
        self.gs_ctrl = None

    def seg(self, *elements):
        self.segs.append(self.e.join(elements))
        self.count += 1

    def gs(self, fid, ctrl, version, sender="SUBMITTERID", receiver="RECEIVERID"):
        self.segs.append(self.e.join(["GS", fid, sender, receiver, "20240102", "1200", ctrl, "X",
                                      version]))
        self.groups += 1
        self.sets = 0
        self.gs_ctrl = ctrl

    def st(self, tsid, ctrl, version):
        self.count = 0
        self.st_ctrl = ctrl
        self.seg("ST", tsid, ctrl, version)
        self.sets += 1

    def se(self, count=None, ctrl=None):
        self.seg("SE", str(count if count is not None else self.count + 1),
                 ctrl if ctrl is not None else self.st_ctrl)

    def ge(self, count=None, ctrl=None):
        self.segs.append(self.e.join(["GE", str(count if count is not None else self.sets),
                                      ctrl if ctrl is not None else self.gs_ctrl]))

    def iea(self, count=None, ctrl=None):
        self.segs.append(self.e.join(["IEA", str(count if count is not None else self.groups),
                                      ctrl if ctrl is not None else self.ctrl]))

    def text(self):
        return "".join(s + self.term + self.brk for s in self.segs)


def c(ix, *parts):
    return ix.comp.join(parts)


def claim_837(ix, st_ctrl, pcn, last, first, dob, sex, member, lines):
    ix.st("837", st_ctrl, "005010X222A1")
    ix.seg("BHT", "0019", "00", "BATCH" + st_ctrl, "20240102", "1200", "CH")
    ix.seg("NM1", "41", "2", "ACME FAMILY PRACTICE", "", "", "", "", "46", "SUB12345")
    ix.seg("PER", "IC", "BILLING OFFICE", "TE", "2175550100")
    ix.seg("NM1", "40", "2", "EXAMPLE PAYER", "", "", "", "", "46", "PAYERID")
    ix.seg("HL", "1", "", "20", "1")
    ix.seg("PRV", "BI", "PXC", "207Q00000X")
    ix.seg("NM1", "85", "2", "ACME FAMILY PRACTICE", "", "", "", "", "XX", "1234567893")
    ix.seg("N3", "100 MEDICAL PLAZA")
    ix.seg("N4", "SPRINGFIELD", "IL", "627010000")
    ix.seg("REF", "EI", "371234567")
    ix.seg("HL", "2", "1", "22", "0")
    ix.seg("SBR", "P", "18", "GRP1001", "", "", "", "", "", "CI")
    ix.seg("NM1", "IL", "1", last, first, "", "", "", "MI", member)
    ix.seg("N3", "123 MAIN ST")
    ix.seg("N4", "SPRINGFIELD", "IL", "62701")
    ix.seg("DMG", "D8", dob, sex)
    ix.seg("NM1", "PR", "2", "EXAMPLE PAYER", "", "", "", "", "PI", "PAYERID")
    total = sum(amount for _, amount, _ in lines)
    ix.seg("CLM", pcn, str(total), "", "", c(ix, "11", "B", "1"), "Y", "A", "Y", "Y")
    ix.seg("HI", c(ix, "ABK", "E119"), c(ix, "ABF", "I10"))
    for n, (cpt, amount, date) in enumerate(lines, 1):
        ix.seg("LX", str(n))
        ix.seg("SV1", c(ix, "HC", cpt), str(amount), "UN", "1", "", "", c(ix, "1", "2"))
        ix.seg("DTP", "472", "D8", date)
    ix.se()


def remit_835(ix, st_ctrl, trace, claims):
    ix.st("835", st_ctrl, "005010X221A1")
    paid = sum(p for _, _, p, _ in claims)
    ix.seg("BPR", "I", str(paid + 32), "C", "ACH", "CCP", "01", "999999992", "DA", "123456",
           "1512345678", "", "01", "999988880", "DA", "98765", "20240115")
    ix.seg("TRN", "1", trace, "1512345678")
    ix.seg("DTM", "405", "20240115")
    ix.seg("N1", "PR", "EXAMPLE PAYER")
    ix.seg("N3", "PO BOX 1000")
    ix.seg("N4", "CHICAGO", "IL", "60601")
    ix.seg("PER", "BL", "PROVIDER SERVICES", "TE", "8005550199")
    ix.seg("N1", "PE", "ACME FAMILY PRACTICE", "XX", "1234567893")
    ix.seg("REF", "TJ", "371234567")
    ix.seg("LX", "1")
    for pcn, charge, paid_amt, cpt in claims:
        ix.seg("CLP", pcn, "1", str(charge), str(paid_amt), str(charge - paid_amt), "12",
               "ICN" + pcn, "11", "1")
        ix.seg("NM1", "QC", "1", "DOE", "JANE", "", "", "", "MI", "XYZ123456789")
        ix.seg("DTM", "232", "20240102")
        ix.seg("SVC", c(ix, "HC", cpt), str(charge), str(paid_amt), "", "1")
        ix.seg("DTM", "472", "20240102")
        ix.seg("CAS", "CO", "45", str(charge - paid_amt))
        ix.seg("AMT", "B6", str(paid_amt))
    ix.seg("PLB", "1234567893", "20241231", c(ix, "WO", "ABC123"), "-32")
    ix.se()


def x12_837(ctrl="000000101", **kw):
    """Two functional groups: group 101 with two 837P sets, group 102 with one."""
    ix = Interchange(ctrl, **kw)
    ix.gs("HC", "101", "005010X222A1")
    claim_837(ix, "0001", "PCN0001", "DOE", "JANE", "19800314", "F", "XYZ123456789",
              [("99213", 125, "20240102")])
    claim_837(ix, "0002", "PCN0002", "ROE", "RICHARD", "19750702", "M", "XYZ987654321",
              [("99204", 210, "20240102"), ("36415", 15, "20240102")])
    ix.ge()
    ix.gs("HC", "102", "005010X222A1")
    claim_837(ix, "0003", "PCN0003", "POE", "EDGAR", "19900101", "M", "XYZ555555555",
              [("99214", 180, "20240103")])
    ix.ge()
    ix.iea()
    return ix


def x12_fixtures():
    write(X12, "837p_multi.x12", x12_837().text())

    # 835 on one line (no line breaks), two sets.
    ix = Interchange("000000201", brk="", sender="PAYERID", receiver="ACMEPRACTICE")
    ix.gs("HP", "201", "005010X221A1", sender="PAYERID", receiver="ACMEPRACTICE")
    remit_835(ix, "1001", "EFT0001", [("PCN0001", 125, 100, "99213")])
    remit_835(ix, "1002", "EFT0002", [("PCN0002", 225, 180, "99204"),
                                      ("PCN0003", 180, 150, "99214")])
    ix.ge()
    ix.iea()
    write(X12, "835_remit.x12", ix.text())

    # Custom delimiters: '|' elements, '>' components, '^' repetition, newline terminator.
    ix = x12_837("000000301", e="|", comp=">", rep="^", term="\n", brk="")
    write(X12, "837p_pipe_newline.x12", ix.text())

    # '^' components, '{' repetition, '~' terminator followed by CRLF.
    ix = x12_837("000000302", comp="^", rep="{", brk="\r\n")
    write(X12, "837p_caret_crlf.x12", ix.text())

    # Two interchanges in one file (837 then 835).
    a = x12_837("000000401")
    b = Interchange("000000402", sender="PAYERID", receiver="ACMEPRACTICE")
    b.gs("HP", "402", "005010X221A1")
    remit_835(b, "2001", "EFT0401", [("PCN0001", 125, 100, "99213")])
    b.ge()
    b.iea()
    write(X12, "two_interchanges.x12", a.text() + b.text())

    # --- broken inputs (all built from the 837 above, one thing wrong each) ---
    def variant(name, mutate):
        ix = x12_837()
        segs = mutate(ix.segs)
        write(X12, name, "".join(s + ix.term + ix.brk for s in segs))

    def replace_nth(segs, prefix, n, new):
        seen = 0
        out = []
        for s in segs:
            if s.startswith(prefix):
                seen += 1
                if seen == n:
                    if new is not None:
                        out.append(new)
                    continue
            out.append(s)
        return out

    def mutate_nth(segs, prefix, n, index, value):
        seen = 0
        out = []
        for s in segs:
            if s.startswith(prefix):
                seen += 1
                if seen == n:
                    el = s.split("*")
                    el[index] = value(el[index])
                    s = "*".join(el)
            out.append(s)
        return out

    # SE-01 of the second set is one too many.
    variant("se_count_mismatch.x12",
            lambda s: mutate_nth(s, "SE*", 2, 1, lambda v: str(int(v) + 1)))
    # SE-02 of the first set is 0009 (ST-02 is 0001).
    variant("se_control_mismatch.x12", lambda s: mutate_nth(s, "SE*", 1, 2, lambda v: "0009"))
    # GE-02 of the first group is 999 (GS-06 is 101).
    variant("ge_control_mismatch.x12", lambda s: mutate_nth(s, "GE*", 1, 2, lambda v: "999"))
    # GE-01 of the first group says 3 sets (it has 2).
    variant("ge_count_mismatch.x12", lambda s: mutate_nth(s, "GE*", 1, 1, lambda v: "3"))
    # IEA-02 differs from ISA-13.
    variant("iea_control_mismatch.x12",
            lambda s: mutate_nth(s, "IEA*", 1, 2, lambda v: "000000999"))
    # IEA-01 says 1 group (there are 2).
    variant("iea_count_mismatch.x12", lambda s: mutate_nth(s, "IEA*", 1, 1, lambda v: "1"))
    # No IEA at the end.
    variant("missing_iea.x12", lambda s: replace_nth(s, "IEA*", 1, None))
    # The first set has no SE: the next ST comes first.
    variant("missing_se.x12", lambda s: replace_nth(s, "SE*", 1, None))
    # A CLM between GE and GS (outside any set).
    variant("unexpected_segment.x12",
            lambda s: s[:s.index("GE*2*101") + 1] + ["CLM*STRAY*1"] + s[s.index("GE*2*101") + 1:])
    # ISA cut short at end of file.
    write(X12, "truncated_isa.x12", isa("000000101")[:60])
    # ISA with a short ISA-06 (not the fixed layout).
    write(X12, "invalid_isa.x12",
          "ISA*00*          *00*          *ZZ*SHORT*ZZ*RECEIVER01     *240102*1200*^*00501*000000101*0*P*:~\n"
          "GS*HC*A*B*20240102*1200*1*X*005010X222A1~\n")
    write(X12, "not_x12.x12", "PatientId,LastName\n1001,DOE\n")


def fuzz_corpora():
    """Seed corpora: each fixture behind the fuzz targets' option bytes."""
    fuzz = os.path.join(HERE, "..", "fuzz", "corpus")
    # fuzz_csv: byte 0 = delimiter | encoding << 2 | trim << 4 | record limit << 6,
    # byte 1 = chunking seed, byte 2 = columns limit / resume chunking.
    delim = {",": 0, ";": 1, "\t": 2, "|": 3}
    csv_seeds = [("patients.csv", ",", 0, 0), ("appointments.csv", ",", 0, 2),
                 ("charges.csv", ";", 0, 0), ("providers.csv", "\t", 0, 2),
                 ("inventory.csv", "|", 0, 2), ("patients_1252.csv", ",", 1, 0),
                 ("patients_1252.csv", ",", 2, 0), ("lone_cr.csv", ",", 0, 0),
                 ("ragged.csv", ",", 0, 0), ("unterminated_quote.csv", ",", 0, 0),
                 ("invalid_utf8.csv", ",", 0, 0), ("quote_errors.csv", ",", 0, 1),
                 ("duplicate_header.csv", ",", 0, 0), ("utf16.csv", ",", 0, 0)]
    for i, (name, d, enc, trim) in enumerate(csv_seeds):
        with open(os.path.join(CSV, name), "rb") as f:
            data = f.read()
        opt = delim[d] | (enc << 2) | (trim << 4) | (3 << 6)
        write(os.path.join(fuzz, "fuzz_csv"), "seed_%02d_%s" % (i, name),
              bytes([opt, 7 + i, 63]) + data)
    # fuzz_x12: byte 0 = limits, byte 1 = chunking seed.
    for i, name in enumerate(sorted(os.listdir(X12))):
        with open(os.path.join(X12, name), "rb") as f:
            data = f.read()
        write(os.path.join(fuzz, "fuzz_x12"), "seed_%02d_%s" % (i, name),
              bytes([0x07, 5 + i]) + data)


if __name__ == "__main__":
    csv_fixtures()
    x12_fixtures()
    fuzz_corpora()
