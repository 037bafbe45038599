"""The organisation's currency (issue 18, the dashboard): costs are shown in it. Frozen: literal values only."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tenancy", "0005_organization_one_person_activation"),
    ]

    operations = [
        migrations.AddField(
            model_name="organization",
            name="currency",
            field=models.CharField(
                choices=[
                    ('EUR', 'Euro (EUR)'),
                    ('USD', 'US dollar (USD)'),
                    ('GBP', 'Pound sterling (GBP)'),
                    ('CHF', 'Swiss franc (CHF)'),
                    ('SEK', 'Swedish krona (SEK)'),
                    ('NOK', 'Norwegian krone (NOK)'),
                    ('DKK', 'Danish krone (DKK)'),
                    ('PLN', 'Polish złoty (PLN)'),
                    ('CZK', 'Czech koruna (CZK)'),
                    ('HUF', 'Hungarian forint (HUF)'),
                    ('RON', 'Romanian leu (RON)'),
                    ('CAD', 'Canadian dollar (CAD)'),
                    ('AUD', 'Australian dollar (AUD)'),
                    ('JPY', 'Japanese yen (JPY)'),
                ],
                default="EUR",
                help_text="The currency of your providers' prices: every cost and budget is shown in it "
                "(nothing is converted).",
                max_length=3,
            ),
        ),
        migrations.AddConstraint(
            model_name="organization",
            constraint=models.CheckConstraint(
                condition=models.Q(("currency__in", ['EUR', 'USD', 'GBP', 'CHF', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'HUF', 'RON', 'CAD', 'AUD', 'JPY'])),
                name="organization_currency_valid",
                violation_error_message="Unknown currency.",
            ),
        ),
    ]
