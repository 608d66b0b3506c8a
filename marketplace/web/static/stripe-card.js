// The card form of a booking (buyer/booking.html): Stripe Elements collects the card, Stripe.js confirms the
// hold, then the form is submitted and the server re-fetches the intent. A static file: the CSP allows no
// inline script.
(function () {
  var form = document.getElementById("card-form");
  if (!form || !window.Stripe) { return; }
  var stripe = Stripe(form.dataset.stripeKey), card = stripe.elements().create("card");
  card.mount("#card-element");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    stripe.confirmCardPayment(form.dataset.clientSecret, {payment_method: {card: card}}).then(function (result) {
      if (result.error) { document.getElementById("card-error").textContent = result.error.message; }
      else { form.submit(); }  // the server re-fetches the intent and checks the hold before going on
    });
  });
})();
