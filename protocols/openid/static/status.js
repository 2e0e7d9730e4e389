// Shows what /auth/openid/state answers, the way an app would fetch it.
// Tokens are shown only as their first characters and lifetimes.
"use strict";
function short(tok, expiresIn) {
  if (!tok) return "";
  return tok.slice(0, 12) + "… (expires in " + expiresIn + " s)";
}
fetch("/auth/openid/state", {credentials: "same-origin"})
  .then(function (r) {
    if (!r.ok) return r.text().then(function (t) { throw new Error(t); });
    return r.json();
  })
  .then(function (s) {
    document.getElementById("identity").textContent = s.identity;
    document.getElementById("email").textContent = s.email || "";
    document.getElementById("access").textContent = short(s.accessToken, s.accessTokenExpiresIn);
    document.getElementById("idtoken").textContent = short(s.idToken, s.idTokenExpiresIn);
  })
  .catch(function (e) {
    document.getElementById("identity").textContent = "error: " + e.message;
  });
