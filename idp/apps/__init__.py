"""idp's own relying parties: they sign people in through /authorize like any portal (the account
area today, the operator console next), behind one sign-in gate (idp.apps.gate)."""
