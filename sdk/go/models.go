package payments

// The public names of the API's objects. The generated layer names them
// after the server's types; these aliases are what SDK users write.
type (
	// Payment is a payment (object "payment").
	Payment = View
	// Refund is a refund (object "refund").
	Refund = RefundView
	// Event is an event (object "event"); webhooks deliver it as is.
	Event = EventView
	// WebhookEndpoint is a webhook endpoint (object "webhook_endpoint").
	WebhookEndpoint = EndpointView
	// Balance is the account's balance per currency.
	Balance = BalanceView
	// BalanceTransaction is one movement of the balance.
	BalanceTransaction = BalanceTransactionView
)
