from django.urls import path

from . import views

urlpatterns = [
    path("on-hand/", views.OnHand.as_view(), name="stock_on_hand"),
    path("low/", views.LowStock.as_view(), name="stock_low"),
    path("expiring/", views.Expiring.as_view(), name="stock_expiring"),
    path("consumption/", views.Consumption.as_view(), name="stock_consumption"),
    path("consumption/chart.svg", views.ConsumptionChart.as_view(), name="stock_consumption_chart"),
    path("waste/", views.Waste.as_view(), name="stock_waste"),
    path("valuation/", views.Valuation.as_view(), name="stock_valuation"),
    path("lots/<int:pk>/", views.LotLedger.as_view(), name="stock_lot_ledger"),
]
