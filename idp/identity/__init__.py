"""The identity domain: persons, accounts, phones, assurance levels and the audit trail."""
