// Submits the OAuth form_post response as soon as the page loads (a button covers no-JS browsers).
document.getElementById("form-post").submit();
